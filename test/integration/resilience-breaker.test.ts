// Circuit breaking through a real waypoint (l7-semantics.md §4.10, §5.1, §5.2): DestinationRule
// connectionPool limits overflow at once with 503 `... reset reason: overflow`, header
// `x-envoy-overloaded: true` and flag UO, without retry; the slot comes back when a request ends.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Waypoint } from '../../src/waypoint.ts';
import {
  accessLogCapture,
  ControllableBackend,
  flagsOf,
  requester,
} from '../helpers/controllable-backend.ts';
import { id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const WAYPOINT_IP = '127.0.182.100';
const ONE = '127.0.182.1'; // http2MaxRequests: 1
const PENDING = '127.0.182.2'; // maxConnections: 1, http1MaxPendingRequests: 1

const OVERFLOW_BODY = 'upstream connect error or disconnect/reset before headers. reset reason: overflow';

const DESTINATION_RULES = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: one, namespace: shop }
spec:
  host: one.shop.svc.cluster.local
  trafficPolicy:
    connectionPool:
      http: { http2MaxRequests: 1 }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: pending, namespace: shop }
spec:
  host: pending.shop.svc.cluster.local
  trafficPolicy:
    connectionPool:
      tcp: { maxConnections: 1 }
      http: { http1MaxPendingRequests: 1 }
`;

let mesh: TestMesh;
let waypoint: Waypoint;
let backend: ControllableBackend;
const log = accessLogCapture();

beforeAll(async () => {
  mesh = await TestMesh.create();
  await mesh.writeConfig(
    'mesh.yaml',
    [
      waypointYaml(),
      serviceYaml({
        name: 'one',
        vip: ONE,
        port: 80,
        targetPort: 8080,
        pods: [{ name: 'one-0', ip: '127.0.182.11' }],
      }),
      serviceYaml({
        name: 'pending',
        vip: PENDING,
        port: 80,
        targetPort: 8080,
        pods: [{ name: 'pending-0', ip: '127.0.182.12' }],
      }),
      DESTINATION_RULES,
    ].join('---\n'),
  );
  backend = await ControllableBackend.start(mesh, 8080, [
    { name: 'one-0', ip: '127.0.182.11', identity: id('shop', 'one') },
    { name: 'pending-0', ip: '127.0.182.12', identity: id('shop', 'pending') },
  ]);
  waypoint = await mesh.startWaypoint({
    ip: WAYPOINT_IP,
    accessLog: 'all',
    accessLogStream: log.stream,
  });
});
afterAll(() => mesh.close());

const send = requester({
  mesh: () => mesh,
  waypoint: () => waypoint,
  log,
  prefix: 'breaker',
  client: id('shop', 'sleep'),
});

/** Sends n requests at once and waits for all. */
function concurrently(n: number, vip: string) {
  return Promise.all(Array.from({ length: n }, (_, i) => send(vip, `/c${i}`)));
}

async function expectOverflow(r: Awaited<ReturnType<typeof send>>): Promise<void> {
  expect(r.status).toBe(503);
  expect(r.body).toBe(OVERFLOW_BODY);
  expect(r.headers['x-envoy-overloaded']).toBe('true');
  expect(flagsOf(await r.line())).toBe('UO');
}

it('http2MaxRequests: 1 with two concurrent slow requests: exactly one 503 overflow (UO)', async () => {
  // Slow enough that both are in flight together, even on a loaded machine.
  backend.always({ delayMs: 500 });
  const results = await concurrently(2, ONE);
  const overflowed = results.filter((r) => r.status === 503);
  expect(results.filter((r) => r.status === 200)).toHaveLength(1);
  expect(overflowed).toHaveLength(1);
  await expectOverflow(overflowed[0]!);
  // The overflow was neither sent nor retried.
  expect(backend.count('one-0')).toBe(1);
});

it('gives the request slot back when the request ends', async () => {
  backend.always({});
  for (let i = 0; i < 3; i++) expect((await send(ONE, `/after${i}`)).status).toBe(200);
});

it('http1MaxPendingRequests: 1 over maxConnections: 1: the second waits for the connection, the third overflows', async () => {
  backend.always({ delayMs: 500 });
  const results = await concurrently(3, PENDING);
  const overflowed = results.filter((r) => r.status === 503);
  const served = results.filter((r) => r.status === 200).sort((a, b) => a.ms - b.ms);
  expect(served).toHaveLength(2);
  expect(overflowed).toHaveLength(1);
  await expectOverflow(overflowed[0]!);
  expect(backend.count('pending-0')).toBe(2);
  // One connection: the queued request started only when the first was done (500 ms each).
  expect(served[1]!.ms).toBeGreaterThanOrEqual(950);
});
