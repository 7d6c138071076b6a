// What the waypoint trusts and hands on when it re-originates a request: the endpoint must prove
// the exact SPIFFE identity of its pod's ServiceAccount (an impostor on the pod's IP gets nothing),
// and credentials meant for a proxy never reach the application.
import type http from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { HboneClient } from '../../src/hbone/client.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const REVIEWS = { ip: '127.0.230.1', port: 8080 };
const IMPOSTOR = { ip: '127.0.230.2', port: 8080 };
// Two Services in front of one pod.
const ALPHA = { ip: '127.0.230.3', port: 8080 };
const BETA = { ip: '127.0.230.4', port: 8080 };
const SHARED_POD = '127.0.230.13';
const forwardedAtShared: string[] = [];

let mesh: TestMesh;
let waypoint: Waypoint;
let client: HboneClient;
let impostorRequests = 0;

beforeAll(async () => {
  mesh = await TestMesh.create();
  await mesh.writeConfig(
    'mesh.yaml',
    [
      waypointYaml(),
      serviceYaml({ name: 'reviews', ...vip(REVIEWS), pods: [{ name: 'reviews-0', ip: '127.0.230.11' }] }),
      serviceYaml({ name: 'ratings', ...vip(IMPOSTOR), pods: [{ name: 'ratings-0', ip: '127.0.230.12' }] }),
      serviceYaml({
        name: 'alpha',
        ...vip(ALPHA),
        pods: [{ name: 'shared-a', ip: SHARED_POD, sa: 'shared' }],
      }),
      serviceYaml({ name: 'beta', ...vip(BETA), pods: [{ name: 'shared-b', ip: SHARED_POD, sa: 'shared' }] }),
    ].join('---\n'),
  );
  await mesh.pod('127.0.230.11', 8080, TestMesh.echoServer('reviews-0'), id('shop', 'reviews'));
  // The pod IP of ratings-0 answers with a certificate for another ServiceAccount.
  const impostor = TestMesh.echoServer('impostor');
  impostor.on('request', () => impostorRequests++);
  await mesh.pod('127.0.230.12', 8080, impostor as http.Server, id('shop', 'reviews'));
  await mesh.pod(SHARED_POD, 8080, TestMesh.echoServer('shared'), id('shop', 'shared'), {
    onTunnel: (req) => forwardedAtShared.push(String(req.headers.forwarded ?? '')),
  });
  waypoint = await mesh.startWaypoint({ ip: '127.0.230.100' });
  client = await mesh.hboneClient(id('shop', 'sleep'));
});
afterAll(() => mesh.close());

function vip(s: { ip: string; port: number }) {
  return { vip: s.ip, port: s.port };
}

async function get(to: { ip: string; port: number }, headers: Record<string, string> = {}) {
  const res = await mesh
    .httpPool(client, waypoint.addresses!.hbone, to)
    .request({ method: 'GET', path: '/', headers });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

it('refuses an endpoint that presents another identity than its pod ServiceAccount', async () => {
  const r = await get(IMPOSTOR);
  expect(r.status).toBe(503);
  expect(r.headers['x-waypoint-reason']).toBe('upstream_connect_failure');
  expect(impostorRequests).toBe(0);
  // The same certificate is accepted where it is the right one.
  expect((await get(REVIEWS)).status).toBe(200);
});

it('never forwards Proxy-Authorization (or other hop-by-hop headers) to the application', async () => {
  // Raw bytes: HTTP clients refuse to send a Connection header that names another header.
  const tunnel = await TestMesh.tunnel(client, waypoint.addresses!.hbone, REVIEWS);
  // Written, not ended: the waypoint closes the tunnel after its answer (Connection: close).
  tunnel.write(
    'GET / HTTP/1.1\r\nHost: reviews\r\nProxy-Authorization: Basic c2VjcmV0\r\n' +
      'Connection: close, x-private\r\nX-Private: hop\r\nX-Kept: end-to-end\r\n\r\n',
  );
  const chunks: Buffer[] = [];
  for await (const c of tunnel) chunks.push(c as Buffer);
  const reply = Buffer.concat(chunks).toString();
  expect(reply).toMatch(/^HTTP\/1\.1 200 /);
  // The echo reports the headers it received as JSON (chunked: look for the names, not a parse).
  expect(reply).toContain('"x-kept":"end-to-end"');
  expect(reply).not.toContain('proxy-authorization');
  expect(reply).not.toContain('x-private');
});

it("names each Service in its own tunnels' forwarded host, even when Services share a pod", async () => {
  expect((await get(ALPHA)).status).toBe(200);
  expect((await get(BETA)).status).toBe(200);
  expect((await get(ALPHA)).status).toBe(200);
  // A keep-alive tunnel opened for alpha is never reused for beta under alpha's name.
  expect(forwardedAtShared.sort()).toEqual([
    'host=alpha.shop.svc.cluster.local',
    'host=beta.shop.svc.cluster.local',
  ]);
});
