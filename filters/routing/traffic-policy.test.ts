// DestinationRule connection-pool limits per replica (Istio's meaning) or, with the
// connection-pool-scope annotation, per waypoint: divided among the live waypoint replicas.
import { afterAll, describe, expect, it } from 'vitest';
import { compileSnapshot } from '../../config/compile.ts';
import { readManifests } from '../../config/load.ts';
import type { Snapshot } from '../../config/model.ts';
import { ResourceStore } from '../../config/store.ts';
import { removeTrees, writeTree } from '../../config/test-support.ts';
import { UNLIMITED } from '../../src/upstream/cluster.ts';
import { serviceYaml, waypointYaml } from '../../test/helpers/mesh.ts';
import { ROUTING, routingFilter } from './index.ts';
import type { RoutingConfig } from './model.ts';
import { CONNECTION_POOL_SCOPE_ANNOTATION } from './traffic-policy.ts';

afterAll(removeTrees);

function waypointPod(name: string): string {
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: shop
  labels:
    istio.io/gateway-name: waypoint
status:
  phase: Running
  conditions: [{type: Ready, status: "True"}]
`;
}

function destinationRule(scope: string | undefined): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: api-pool
  namespace: shop${scope === undefined ? '' : `\n  annotations:\n    ${CONNECTION_POOL_SCOPE_ANNOTATION}: "${scope}"`}
spec:
  host: api
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 7}
      http: {http2MaxRequests: 5, http1MaxPendingRequests: 1, maxRetries: 4}
`;
}

async function compiled(replicas: number, dr: string): Promise<Snapshot> {
  const docs = [
    waypointYaml(),
    serviceYaml({ name: 'api', vip: '10.96.0.1', port: 80, pods: [{ name: 'api-a', ip: '10.0.0.1' }] }),
    dr,
    ...Array.from({ length: replicas }, (_, i) => waypointPod(`waypoint-${i}`)),
  ];
  const store = new ResourceStore();
  const report = store.update(await readManifests([await writeTree({ 'mesh.yaml': docs.join('---\n') })]));
  expect(report.rejected).toEqual([]);
  return compileSnapshot(
    store.resources(),
    {
      gateway: { namespace: 'shop', name: 'waypoint' },
      trustDomain: 'cluster.local',
      clusterDomain: 'cluster.local',
    },
    1,
    { [ROUTING]: routingFilter.compile! },
  );
}

const pool = (s: Snapshot) =>
  (s.filters[ROUTING] as RoutingConfig).ports.get('shop/api:80')!.defaultCluster.policy.connectionPool;

describe('DestinationRule connection-pool scope', () => {
  it('waypoint: divides the thresholds by the live replicas, rounding up, at least 1', async () => {
    const s = await compiled(2, destinationRule('waypoint'));
    expect(s.gateway.replicas).toBe(2);
    expect(pool(s)).toMatchObject({
      maxConnections: 4,
      http2MaxRequests: 3,
      http1MaxPendingRequests: 1,
      maxRetries: 2,
    });
  });

  it('waypoint: what is unlimited stays unlimited', async () => {
    const dr = destinationRule('waypoint').replace('tcp: {maxConnections: 7}', 'tcp: {}');
    expect(pool(await compiled(3, dr)).maxConnections).toBe(UNLIMITED);
  });

  it('replica, or no annotation: the thresholds hold in each replica, as in Istio', async () => {
    for (const scope of ['replica', undefined]) {
      expect(pool(await compiled(2, destinationRule(scope)))).toMatchObject({
        maxConnections: 7,
        http2MaxRequests: 5,
        maxRetries: 4,
      });
    }
  });

  it('an unknown value is a warning naming the DestinationRule and the annotation; replica applies', async () => {
    const s = await compiled(2, destinationRule('cluster'));
    expect(pool(s).http2MaxRequests).toBe(5);
    expect(s.messages).toContainEqual(
      expect.objectContaining({
        severity: 'warning',
        kind: 'DestinationRule',
        namespace: 'shop',
        name: 'api-pool',
        field: `metadata.annotations["${CONNECTION_POOL_SCOPE_ANNOTATION}"]`,
        message: expect.stringMatching(
          /DestinationRule shop\/api-pool: .*connection-pool-scope is "cluster", not one of replica, waypoint/,
        ),
      }),
    );
  });
});
