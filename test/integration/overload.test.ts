// Overload limits through real waypoints: past a limit a new tunnel is refused (HBONE 503, or the
// connection closed at accept) or a request gets 503 `envoy overloaded` with x-envoy-overloaded,
// each refusal is counted by limit, and traffic already admitted keeps flowing. Heap shedding is
// forced through an injected heap reader.
import { once } from 'node:events';
import http2 from 'node:http2';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { HeapReading } from '../../src/lifecycle/overload.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { accessLogCapture, ControllableBackend, requester } from '../helpers/controllable-backend.ts';
import { eventually, id, metricValue, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const WAYPOINT_IP = '127.0.186.100';
const VIP = '127.0.186.1';
const POD = '127.0.186.11';
const DESTINATION = { ip: VIP, port: 80 };

let mesh: TestMesh;
let backend: ControllableBackend;

beforeAll(async () => {
  mesh = await TestMesh.create();
  await mesh.writeConfig(
    'mesh.yaml',
    [
      waypointYaml(),
      serviceYaml({ name: 'web', vip: VIP, port: 80, targetPort: 8080, pods: [{ name: 'web-0', ip: POD }] }),
    ].join('---\n'),
  );
  backend = await ControllableBackend.start(mesh, 8080, [
    { name: 'web-0', ip: POD, identity: id('shop', 'web') },
  ]);
});
afterAll(() => mesh.close());

async function start(opts: Parameters<TestMesh['startWaypoint']>[0] = {}) {
  const log = accessLogCapture();
  const waypoint = await mesh.startWaypoint({
    ip: WAYPOINT_IP,
    accessLog: 'all',
    accessLogStream: log.stream,
    ...opts,
  });
  let n = 0;
  const send = requester({
    mesh: () => mesh,
    waypoint: () => waypoint,
    log,
    prefix: `overload${++n}`,
    client: id('shop', 'sleep'),
  });
  return { waypoint, send };
}

async function refusals(waypoint: Waypoint, limit: string): Promise<number> {
  return metricValue(await waypoint.metrics.render(), 'waypoint_overload_refusals_total', { limit });
}

async function openTunnel(waypoint: Waypoint) {
  const client = await mesh.hboneClient(id('shop', 'sleep'));
  return TestMesh.tunnel(client, waypoint.addresses!.hbone, DESTINATION);
}

it('--max-tunnels: a CONNECT past the cap gets 503 and is counted; open tunnels keep serving', async () => {
  backend.always({});
  const { waypoint, send } = await start({ overload: { maxTunnels: 2 } });
  expect((await send(VIP, '/first')).status).toBe(200); // tunnel 1: the pool's keep-alive tunnel
  const second = await openTunnel(waypoint); // tunnel 2
  const refused = await openTunnel(waypoint).catch((e: { status?: number }) => e);
  expect(refused).toMatchObject({ name: 'TunnelError', status: 503 });
  expect(await refusals(waypoint, 'tunnels')).toBe(1);
  expect(
    metricValue(await waypoint.metrics.render(), 'waypoint_hbone_tunnels_rejected_total', {
      reason: 'overload_tunnels',
    }),
  ).toBe(1);
  expect((await send(VIP, '/still')).status).toBe(200);
  // A tunnel closes: a new one is admitted.
  second.close();
  await eventually(
    () => waypoint.metrics.render().then((t) => metricValue(t, 'waypoint_hbone_tunnels_active') === 1),
    'tunnel 2 closed',
  );
  (await openTunnel(waypoint)).close();
});

it('--max-connections: a connection past the cap is closed at accept and counted; the first keeps working', async () => {
  backend.always({});
  const { waypoint, send } = await start({ overload: { maxConnections: 1 } });
  expect((await send(VIP, '/one')).status).toBe(200);
  const refused = await openTunnel(waypoint).catch((e: Error) => e);
  expect(refused).toBeInstanceOf(Error);
  expect(await refusals(waypoint, 'connections')).toBe(1);
  expect((await send(VIP, '/two')).status).toBe(200);
});

it('--max-pending-requests: a request past the cap gets 503 envoy overloaded; the pending one completes', async () => {
  backend.always({ delayMs: 3000 });
  const { waypoint, send } = await start({ overload: { maxPendingRequests: 1 } });
  const slow = send(VIP, '/slow');
  await eventually(() => backend.count() === 1, 'the slow request at the backend');
  const over = await send(VIP, '/over');
  expect(over.status).toBe(503);
  expect(over.body).toBe('envoy overloaded');
  expect(over.headers['x-envoy-overloaded']).toBe('true');
  expect(over.headers['x-waypoint-reason']).toBe('overload_pending_requests');
  expect(await over.line()).toContain('overload_pending_requests');
  expect(await refusals(waypoint, 'pending_requests')).toBe(1);
  expect(backend.count()).toBe(1); // never sent
  expect((await slow).status).toBe(200);
  backend.always({});
  expect((await send(VIP, '/after')).status).toBe(200);
});

it('heap above high water: new tunnels and requests shed, admitted work finishes; below low water: recovered', async () => {
  const heap = { used: 100, limit: 1000 };
  const { waypoint, send } = await start({ heapReader: (): HeapReading => ({ ...heap }) });
  const gauge = async () => metricValue(await waypoint.metrics.render(), 'waypoint_overload_heap_shedding');
  backend.always({});
  expect((await send(VIP, '/warm')).status).toBe(200); // an existing keep-alive tunnel
  backend.always({ delayMs: 1500 });
  const inFlight = send(VIP, '/in-flight');
  await eventually(() => backend.count() === 1, 'the in-flight request at the backend');

  heap.used = 950;
  waypoint.heap.sample();
  expect(await gauge()).toBe(1);
  const tunnel = await openTunnel(waypoint).catch((e: { status?: number }) => e);
  expect(tunnel).toMatchObject({ status: 503 });
  const shed = await send(VIP, '/shed');
  expect(shed.status).toBe(503);
  expect(shed.headers['x-waypoint-reason']).toBe('overload_heap');
  expect(shed.headers['x-envoy-overloaded']).toBe('true');
  expect((await inFlight).status).toBe(200); // admitted before: it finishes
  expect(await refusals(waypoint, 'heap')).toBe(2);

  heap.used = 850; // between the marks: still shedding
  waypoint.heap.sample();
  expect((await send(VIP, '/between')).status).toBe(503);
  heap.used = 700;
  waypoint.heap.sample();
  expect(await gauge()).toBe(0);
  backend.always({});
  expect((await send(VIP, '/recovered')).status).toBe(200);
  (await openTunnel(waypoint)).close();
});

it('--max-tunnels-per-connection is what the waypoint advertises as SETTINGS_MAX_CONCURRENT_STREAMS', async () => {
  const { waypoint } = await start({ overload: { maxTunnelsPerConnection: 3 } });
  const creds = await mesh.credentials(id('shop', 'sleep'));
  const hbone = waypoint.addresses!.hbone;
  const session = http2.connect(`https://${hbone.ip}:${hbone.port}`, {
    ...creds.tlsOptions(),
    ALPNProtocols: ['h2'],
    checkServerIdentity: () => undefined,
  });
  session.on('error', () => {});
  const [settings] = (await once(session, 'remoteSettings')) as [http2.Settings];
  expect(settings.maxConcurrentStreams).toBe(3);
  session.close();
});
