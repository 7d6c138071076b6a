// Istio's retry defaults for the routes routing compiles. The upstream layers apply whatever
// policy ctx.target carries; which policy a route without a retry field gets is routing's rule.
import type { RetryPolicy, UpstreamTarget } from '../../src/upstream/target.ts';

const CONNECT_ERRORS = Object.freeze(['connect-failure', 'refused-stream']);

/**
 * A route (HTTPRoute or VirtualService rule) without a retry field: Istio's mesh default
 * (l7-semantics.md §4.7; EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY=true, so no status codes). Its gRPC
 * tokens retry a response the application sent (UNAVAILABLE, CANCELLED).
 */
export const MESH_DEFAULT_RETRY: RetryPolicy = Object.freeze({
  attempts: 2,
  retryOn: Object.freeze([...CONNECT_ERRORS, 'unavailable', 'cancelled']),
  retriableStatusCodes: Object.freeze([]) as readonly number[],
  backoffBaseMs: 25,
  avoidPreviousHosts: true,
  retryRemoteLocalities: false,
});

/**
 * `run --default-retry safe`: the mesh default narrowed to requests that provably never reached the
 * application (users-and-style.md A.16); a route opts into more with its own retry field.
 */
export const SAFE_MESH_DEFAULT_RETRY: RetryPolicy = Object.freeze({
  ...MESH_DEFAULT_RETRY,
  retryOn: CONNECT_ERRORS,
});

export type DefaultRetry = 'istio' | 'safe';

/**
 * The target as it goes upstream: under `safe`, one carrying the mesh default gets the safe policy
 * instead (one copy per compiled target, made on first use).
 */
export function withDefaultRetry(mode: DefaultRetry): (t: UpstreamTarget) => UpstreamTarget {
  if (mode === 'istio') return (t) => t;
  const safe = new WeakMap<UpstreamTarget, UpstreamTarget>();
  return (t) => {
    if (t.retry !== MESH_DEFAULT_RETRY) return t;
    let s = safe.get(t);
    if (!s) {
      s = Object.freeze({ ...t, retry: SAFE_MESH_DEFAULT_RETRY });
      safe.set(t, s);
    }
    return s;
  };
}
