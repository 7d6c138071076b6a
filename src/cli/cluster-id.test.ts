import { describe, expect, it } from 'vitest';
import { clusterIdFrom } from './flags.ts';

describe('--cluster-id', () => {
  it("wins over WAYPOINT_CLUSTER_ID, which wins over Istio's ISTIO_META_CLUSTER_ID; default Kubernetes", () => {
    const env = { WAYPOINT_CLUSTER_ID: 'w', ISTIO_META_CLUSTER_ID: 'istio' };
    expect(clusterIdFrom('flag', env)).toBe('flag');
    expect(clusterIdFrom(undefined, env)).toBe('w');
    expect(clusterIdFrom(undefined, { ISTIO_META_CLUSTER_ID: 'istio' })).toBe('istio');
    expect(clusterIdFrom(undefined, {})).toBe('Kubernetes');
  });
});
