// Istio's retry defaults are routing's: a route without a retry field carries the mesh default,
// and `--default-retry safe` hands the upstream layers the narrowed policy instead.
import { describe, expect, it } from 'vitest';
import { NO_TARGET_RETRY, NO_TIMEOUTS, type UpstreamTarget } from '../../src/upstream/target.ts';
import { MESH_DEFAULT_RETRY, SAFE_MESH_DEFAULT_RETRY, withDefaultRetry } from './defaults.ts';

const target = (retry = MESH_DEFAULT_RETRY): UpstreamTarget => ({
  cluster: { name: 'outbound|9080||reviews.shop.svc.cluster.local' } as UpstreamTarget['cluster'],
  timeouts: NO_TIMEOUTS,
  retry,
  mirrors: [],
  routeName: 'shop.reviews.0',
});

describe('retry defaults', () => {
  it("is Istio's mesh default: 2 retries on connect failure, refused stream, gRPC UNAVAILABLE and CANCELLED", () => {
    expect(MESH_DEFAULT_RETRY).toMatchObject({
      attempts: 2,
      retryOn: ['connect-failure', 'refused-stream', 'unavailable', 'cancelled'],
      retriableStatusCodes: [],
    });
    expect(SAFE_MESH_DEFAULT_RETRY).toMatchObject({
      attempts: 2,
      retryOn: ['connect-failure', 'refused-stream'],
    });
  });

  it('istio leaves every target as routing compiled it', () => {
    const t = target();
    expect(withDefaultRetry('istio')(t)).toBe(t);
  });

  it('safe narrows only the mesh default, once per target, keeping the rest of the target', () => {
    const safe = withDefaultRetry('safe');
    const t = target();
    const s = safe(t);
    expect(s).toEqual({ ...t, retry: SAFE_MESH_DEFAULT_RETRY });
    expect(safe(t)).toBe(s);
    const own = target({ ...MESH_DEFAULT_RETRY, attempts: 5 });
    expect(safe(own)).toBe(own);
    const noRoute = target(NO_TARGET_RETRY);
    expect(safe(noRoute)).toBe(noRoute);
  });
});
