// The filter chain's order, the one place it is written down. Each filter lives in its own folder
// (filters/<name>/: index.ts with its FilterFactory, config compile step, README). Istio's waypoint
// runs CUSTOM authz, then JWT authn, then RBAC, then fault and the rest, then the router
// (l7-semantics.md §1); new filters take their place in that order here and nowhere else.
import type { FilterFactory } from '../src/pipeline/filter.ts';
import { authzFilter } from './authz/index.ts';
import { JWT_AUTHN } from './jwt-authn/index.ts';

// authz (RBAC) after JWT authentication: it reads requestAuth(ctx). CUSTOM (ext_authz) will go first.
export const FILTER_ORDER: readonly FilterFactory[] = [JWT_AUTHN, authzFilter];
