// Istio's retry policy for a route without a retry field (l7-semantics.md §4.7, §4.11). Without
// any route, the retry layer's NO_TARGET_RETRY applies.
import type { RetryPolicy } from '../../src/upstream/target.ts';

/**
 * A route exists (HTTPRoute or VirtualService rule) without a retry field: the mesh default of
 * current Istio (EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY=true, so no retriable status codes).
 */
export const MESH_DEFAULT_RETRY: RetryPolicy = Object.freeze({
  attempts: 2,
  retryOn: Object.freeze(['connect-failure', 'refused-stream', 'unavailable', 'cancelled']),
  retriableStatusCodes: Object.freeze([]) as readonly number[],
  backoffBaseMs: 25,
  avoidPreviousHosts: true,
  retryRemoteLocalities: false,
});
