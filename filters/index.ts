// The filter chain's order, the one place it is written down. Each filter lives in its own folder
// (filters/<name>/: index.ts with its FilterFactory, config compile step, README). Istio's waypoint
// runs CUSTOM authz, then JWT authn, then RBAC, then fault and the rest, then the router
// (l7-semantics.md §1); new filters take their place in that order here and nowhere else. The
// composition root (src/compose.ts) hands the result to the engine, which never imports filters/.

import type { Logger } from '../src/observe/logger.ts';
import type { ChainFactories, FilterFactory, MeshConfigCheck } from '../src/pipeline/filter.ts';
import { extAuthzFilter } from './authz/custom.ts';
import { ExtAuthzClients } from './authz/ext-authz.ts';
import { authzFilterWith } from './authz/index.ts';
import { type ExtensionProvider, parseMeshConfig } from './authz/mesh-config.ts';
import { corsFilter } from './cors/index.ts';
import { faultFilter } from './fault/index.ts';
import { JWT_AUTHN } from './jwt-authn/index.ts';
import { pathNormalizationFilter } from './path-normalization/index.ts';
import type { FailureMode } from './rate-limit/global.ts';
import { rateLimitFactory } from './rate-limit/index.ts';
import type { DefaultRetry } from './routing/defaults.ts';
import { routingFactory } from './routing/index.ts';

export interface DefaultFiltersOptions {
  /** The mesh config's ext_authz providers at start (`run --mesh-config`). */
  readonly extensionProviders?: readonly ExtensionProvider[];
  /** Redis for Global rate limits (`run --redis-url`). */
  readonly redisUrl?: string;
  /** What a request gets when Redis cannot answer a Global rate limit (default open). */
  readonly redisFailureMode?: FailureMode;
  /** What a route without a retry field retries (`run --default-retry`, default istio). */
  readonly defaultRetry?: DefaultRetry;
  readonly log?: Logger;
}

/**
 * The chain: path normalization (Envoy's connection manager does it before any filter), CORS,
 * CUSTOM (ext_authz), then JWT authentication, then authz (RBAC: it reads requestAuth(ctx)),
 * fault, rate limits, and the router.
 */
export function defaultFilters(opts: DefaultFiltersOptions = {}): ChainFactories {
  const clients = new ExtAuthzClients();
  let providers = opts.extensionProviders ?? [];
  const rateLimit = rateLimitFactory({
    ...(opts.redisUrl ? { redis: { url: opts.redisUrl } } : {}),
    failureMode: opts.redisFailureMode ?? 'open',
    ...(opts.log ? { log: opts.log } : {}),
  });
  // explain's own buckets and no Redis: explaining consumes nothing a client would miss.
  const explainRateLimit = rateLimitFactory();
  const routing = routingFactory(opts.defaultRetry ? { defaultRetry: opts.defaultRetry } : {});
  const chain = (limits: FilterFactory): FilterFactory[] => [
    pathNormalizationFilter,
    // CORS before authentication and authorization, as Istio orders it, so preflights are answered.
    corsFilter,
    extAuthzFilter(clients),
    JWT_AUTHN,
    authzFilterWith(() => providers),
    faultFilter,
    limits,
    // The router is last, as in Envoy: filters before it may read the selected route.
    routing,
  ];
  return {
    serving: chain(rateLimit),
    explaining: chain(explainRateLimit),
    meshConfig: (text) => checkMeshConfig(text, (p) => (providers = p)),
    close: async () => {
      clients.close();
      await Promise.all([rateLimit.close(), explainRateLimit.close()]);
    },
  };
}

/** The ext_authz providers of a mesh config text (undefined: none), applied on commit. */
function checkMeshConfig(
  text: string | undefined,
  apply: (providers: readonly ExtensionProvider[]) => void,
): MeshConfigCheck {
  let providers: ExtensionProvider[];
  try {
    providers = text === undefined ? [] : parseMeshConfig(text);
  } catch (err) {
    return { error: (err as Error).message };
  }
  return {
    commit: () => {
      apply(providers);
      return { providers: providers.map((p) => p.name) };
    },
  };
}

/** The chain without a mesh config (every CUSTOM provider is missing, so CUSTOM matches deny). */
export const FILTER_ORDER: readonly FilterFactory[] = defaultFilters().serving;
