// The composition root: the one engine-side module that imports filters/ (with the CLI commands).
// It builds the filter chain from the options that configure filters (ext_authz providers, Redis,
// the default retry) and hands it to the engine, which wires it to the configuration source, the
// HTTP engine and the admin port's explain. src/README.md says why the line is here.

import type { ExtensionProvider } from '../filters/authz/mesh-config.ts';
import { defaultFilters } from '../filters/index.ts';
import type { FilterFactory } from './pipeline/filter.ts';
import { Waypoint, type WaypointOptions } from './waypoint.ts';

export interface ComposeOptions extends Omit<WaypointOptions, 'filters'> {
  /** These filters instead of the default chain (tests); no mesh config or Redis is wired to them. */
  readonly factories?: readonly FilterFactory[];
  /** The mesh config's ext_authz providers at start (`run --mesh-config`), for CUSTOM policies. */
  readonly extensionProviders?: readonly ExtensionProvider[];
  /** Redis for Global rate limits (`run --redis-url`); without it Global rules take the failure mode. */
  readonly redisUrl?: string;
  /** What a request gets when Redis cannot answer a Global rate limit (default open). */
  readonly redisFailureMode?: 'open' | 'closed';
}

/** A Waypoint with the default filter chain, or with `factories`. */
export function composeWaypoint(opts: ComposeOptions): Waypoint {
  const { factories, extensionProviders, redisUrl, redisFailureMode, ...engine } = opts;
  const filters = factories
    ? { serving: factories, explaining: factories, close: async () => {} }
    : defaultFilters({
        ...(extensionProviders ? { extensionProviders } : {}),
        ...(redisUrl ? { redisUrl } : {}),
        ...(redisFailureMode ? { redisFailureMode } : {}),
        ...(opts.defaultRetry ? { defaultRetry: opts.defaultRetry } : {}),
        log: opts.log,
      });
  return new Waypoint({ ...engine, filters });
}
