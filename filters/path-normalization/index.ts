// Path normalization, the first thing done to every HTTP request: Envoy's connection manager
// normalizes before any filter runs (Istio's default, BASE), so CUSTOM, JWT and RBAC match, and the
// upstream receives, the same normalized path. One place, ahead of the whole chain.
import { CONTINUE, type FilterFactory } from '../../src/pipeline/filter.ts';
import { normalizePath } from './normalize.ts';

/** The path without its query, as authz's `paths` match it. */
export { pathOnly } from './normalize.ts';

export const PATH_NORMALIZATION = 'path-normalization';

export const pathNormalizationFilter: FilterFactory = {
  name: PATH_NORMALIZATION,
  create: () => ({
    name: PATH_NORMALIZATION,
    onRequestHeaders(ctx) {
      const n = normalizePath(ctx.path);
      if (!n.ok) {
        ctx.explain.push(`path rejected: ${n.why}`);
        return { kind: 'reply', reason: 'downstream_protocol_error', detail: 'path_normalization_failed' };
      }
      if (n.path !== ctx.path) {
        ctx.explain.push(`path normalized to ${n.path}`);
        ctx.path = n.path;
      }
      return CONTINUE;
    },
  }),
};
