// `run --default-retry`: what a route without a retry field retries, applied by the routing filter
// the composition root builds (filters/routing/defaults.ts), carried out by the upstream layers.
// Counts at the backend: Istio's mesh default retries a gRPC UNAVAILABLE the application sent,
// `safe` does not; a route's own retry field is kept under both. Addresses: 127.20.1.x.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Waypoint } from '../../src/waypoint.ts';
import { accessLogCapture, ControllableBackend, requester } from '../helpers/controllable-backend.ts';
import { id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const VIP = '127.20.1.1';

const HTTP_ROUTE = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: app, namespace: shop }
spec:
  parentRefs:
    - { group: "", kind: Service, name: app, port: 80 }
  rules:
    - matches: [{ path: { type: PathPrefix, value: /own } }]
      retry: { attempts: 1, backoff: 1ms }
      backendRefs: [{ name: app, port: 80 }]
    - backendRefs: [{ name: app, port: 80 }]
`;

let mesh: TestMesh;
let backend: ControllableBackend;
const waypoints: Record<'istio' | 'safe', Waypoint | undefined> = { istio: undefined, safe: undefined };
const log = accessLogCapture();

beforeAll(async () => {
  mesh = await TestMesh.create();
  const pods = [
    { name: 'app-0', ip: '127.20.1.11' },
    { name: 'app-1', ip: '127.20.1.12' },
  ];
  await mesh.writeConfig(
    'mesh.yaml',
    [
      waypointYaml(),
      serviceYaml({ name: 'app', vip: VIP, port: 80, targetPort: 8080, pods }),
      HTTP_ROUTE,
    ].join('---\n'),
  );
  backend = await ControllableBackend.start(
    mesh,
    8080,
    pods.map((p) => ({ ...p, identity: id('shop', 'app') })),
  );
  waypoints.istio = await mesh.startWaypoint({ ip: '127.20.1.100' });
  waypoints.safe = await mesh.startWaypoint({ ip: '127.20.1.101', defaultRetry: 'safe' });
});
afterAll(() => mesh.close());

const send = (mode: 'istio' | 'safe') =>
  requester({
    mesh: () => mesh,
    waypoint: () => waypoints[mode]!,
    log,
    prefix: `default-retry-${mode}`,
    client: id('shop', 'sleep'),
  });
const sendVia = { istio: send('istio'), safe: send('safe') };

describe('--default-retry', () => {
  it('istio: a route without retry retries an UNAVAILABLE the application sent, twice', async () => {
    backend.always({ status: 200, headers: { 'grpc-status': '14' } });
    expect((await sendVia.istio(VIP, '/plain')).status).toBe(200);
    expect(backend.count()).toBe(3);
  });

  it('safe: the same request reaches the application once', async () => {
    backend.always({ status: 200, headers: { 'grpc-status': '14' } });
    expect((await sendVia.safe(VIP, '/plain')).status).toBe(200);
    expect(backend.count()).toBe(1);
  });

  it("safe keeps a route's own retry field", async () => {
    backend.always({ status: 503 });
    expect((await sendVia.safe(VIP, '/own')).status).toBe(503);
    expect(backend.count()).toBe(1);
    backend.always({ status: 200, headers: { 'grpc-status': '14' } });
    expect((await sendVia.safe(VIP, '/own')).status).toBe(200);
    expect(backend.count()).toBe(2);
  });
});
