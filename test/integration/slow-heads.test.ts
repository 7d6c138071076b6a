// Slowloris inside tunnels: a request head must be complete within --request-head-timeout (Envoy's
// request_headers_timeout: 408, connection closed), idle keep-alive time does not count, and one
// client identity cannot pile up tunnels whose first head never completes.
import type { ClientHttp2Stream } from 'node:http2';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Waypoint } from '../../src/waypoint.ts';
import { id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const HEAD_TIMEOUT_MS = 400;
const WEB = { ip: '127.0.232.1', port: 8080 };

let mesh: TestMesh;
let waypoint: Waypoint;
/** The same limits with a head timeout long enough that three tunnels open well within it. */
let bounded: Waypoint;

beforeAll(async () => {
  mesh = await TestMesh.create();
  await mesh.writeConfig(
    'mesh.yaml',
    [
      waypointYaml(),
      serviceYaml({
        name: 'web',
        vip: WEB.ip,
        port: WEB.port,
        pods: [{ name: 'web-0', ip: '127.0.232.11' }],
      }),
    ].join('---\n'),
  );
  await mesh.pod('127.0.232.11', WEB.port, TestMesh.echoServer('web-0'), id('shop', 'web'));
  waypoint = await mesh.startWaypoint({
    ip: '127.0.232.100',
    requestHeadTimeoutMs: HEAD_TIMEOUT_MS,
    maxPendingHeadsPerIdentity: 2,
  });
  bounded = await mesh.startWaypoint({
    ip: '127.0.232.101',
    requestHeadTimeoutMs: 3_000,
    maxPendingHeadsPerIdentity: 2,
  });
});
afterAll(() => mesh.close());

/** A tunnel as `sa` with a reader: next() resolves with the bytes of the next response or close. */
async function open(
  sa: string,
  to: Waypoint = waypoint,
): Promise<{ tunnel: ClientHttp2Stream; next: () => Promise<string> }> {
  const client = clients.get(sa) ?? (await mesh.hboneClient(id('shop', sa)));
  clients.set(sa, client);
  const tunnel = await TestMesh.tunnel(client, to.addresses!.hbone, WEB);
  tunnel.on('error', () => {});
  const next = (): Promise<string> =>
    new Promise((resolve) => {
      const done = (): void => resolve('closed');
      tunnel.once('data', (c: Buffer) => {
        tunnel.off('end', done);
        resolve(c.toString('latin1'));
      });
      tunnel.once('end', done);
    });
  return { tunnel, next };
}

const clients = new Map<string, Awaited<ReturnType<TestMesh['hboneClient']>>>();
const GET = 'GET / HTTP/1.1\r\nHost: web\r\n\r\n';

it('answers 408 and closes a tunnel whose request head never completes', async () => {
  const { tunnel, next } = await open('slow-a');
  const reply = next();
  tunnel.write('GET / HTTP/1.1\r\nHo');
  const text = await reply;
  expect(text).toMatch(/^HTTP\/1\.1 408 /);
  expect(text).toContain('x-waypoint-reason: request_header_timeout');
  expect(text).toContain('request header timeout');
  expect(await next()).toBe('closed');
});

it('does not count idle keep-alive time, but does count a slow second head', async () => {
  const { tunnel, next } = await open('slow-b');
  let reply = next();
  tunnel.write(GET);
  expect(await reply).toMatch(/^HTTP\/1\.1 200 /);
  // Idle for twice the head timeout: a keep-alive connection waiting for its next request is fine.
  await new Promise((r) => setTimeout(r, 2 * HEAD_TIMEOUT_MS));
  reply = next();
  tunnel.write(GET);
  expect(await reply).toMatch(/^HTTP\/1\.1 200 /);
  reply = next();
  tunnel.write('GET /second HTTP/1.1\r\n');
  expect(await reply).toMatch(/^HTTP\/1\.1 408 /);
});

it('refuses a third tunnel with an unfinished head from one identity, and no other identity', async () => {
  const first = await open('slow-c', bounded);
  const second = await open('slow-c', bounded);
  first.tunnel.write('GET / HTTP/1.1\r\n');
  second.tunnel.write('GET / HTTP/1.1\r\n');
  const third = await open('slow-c', bounded);
  const answered = third.next();
  third.tunnel.write('GET / HTTP/1.1\r\n');
  const refused = await answered;
  expect(refused).toMatch(/^HTTP\/1\.1 503 /);
  expect(refused).toContain('x-envoy-overloaded: true');
  expect(refused).toContain('x-waypoint-reason: overload_pending_heads');
  // Another workload is not held back by slow-c's tunnels.
  const other = await open('fast', bounded);
  const reply = other.next();
  other.tunnel.write(GET);
  expect(await reply).toMatch(/^HTTP\/1\.1 200 /);
  // Once slow-c's pending heads time out, it may open tunnels again.
  expect(await first.next()).toMatch(/^HTTP\/1\.1 408 /);
  expect(await second.next()).toMatch(/^HTTP\/1\.1 408 /);
  const again = await open('slow-c', bounded);
  const ok = again.next();
  again.tunnel.write(GET);
  expect(await ok).toMatch(/^HTTP\/1\.1 200 /);
});
