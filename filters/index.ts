// The filter chain's order, the one place it is written down. Each filter lives in its own folder
// (filters/<name>/: index.ts with its FilterFactory, config compile step, README). Istio's waypoint
// runs CUSTOM authz, then JWT authn, then RBAC, then fault and the rest, then the router
// (l7-semantics.md §1); new filters take their place in that order here and nowhere else.

import type { FilterFactory } from '../src/pipeline/filter.ts';
import { extAuthzFilter } from './authz/custom.ts';
import { ExtAuthzClients } from './authz/ext-authz.ts';
import { authzFilterWith } from './authz/index.ts';
import type { ExtensionProvider } from './authz/mesh-config.ts';
import { corsFilter } from './cors/index.ts';
import { faultFilter } from './fault/index.ts';
import { JWT_AUTHN } from './jwt-authn/index.ts';
import { pathNormalizationFilter } from './path-normalization/index.ts';
import { rateLimitFactory } from './rate-limit/index.ts';
import { routingFilter } from './routing/index.ts';

export interface FilterChain {
  readonly factories: readonly FilterFactory[];
  /**
   * Replaces the mesh config's ext_authz providers (a reloaded `--mesh-config`); they apply from the
   * next compiled snapshot. Absent on a chain built from explicit factories.
   */
  readonly setExtensionProviders?: (providers: readonly ExtensionProvider[]) => void;
  /** Closes what the filters hold open across snapshots (ext_authz connections). */
  close(): void;
}

/**
 * The chain: path normalization (Envoy's connection manager does it before any filter), CUSTOM
 * (ext_authz), then JWT authentication, then authz (RBAC: it reads
 * requestAuth(ctx)). `extensionProviders` are the mesh config's ext_authz providers.
 */
export function filterChain(opts: { extensionProviders?: readonly ExtensionProvider[] } = {}): FilterChain {
  const clients = new ExtAuthzClients();
  let providers = opts.extensionProviders ?? [];
  return {
    factories: [
      pathNormalizationFilter,
      // CORS before authentication and authorization, as Istio orders it, so preflights are answered.
      corsFilter,
      extAuthzFilter(clients),
      JWT_AUTHN,
      authzFilterWith(() => providers),
      faultFilter,
      rateLimitFactory(),
      // The router is last, as in Envoy: filters before it may read the selected route.
      routingFilter,
    ],
    setExtensionProviders: (p) => {
      providers = p;
    },
    close: () => clients.close(),
  };
}

/** The chain without a mesh config (every CUSTOM provider is missing, so CUSTOM matches deny). */
export const FILTER_ORDER: readonly FilterFactory[] = filterChain().factories;
