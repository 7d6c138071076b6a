// Requests a mesh workload can send by accident or on purpose, written as raw bytes inside real
// tunnels to a waypoint process of its own, so a crash shows as an exit: request targets Envoy
// refuses, absolute-form that must not slip past an AuthorizationPolicy, a repeated Host, and
// clients that vanish before the body they announced.
import http from 'node:http';
import { constants as h2 } from 'node:http2';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { HboneClient } from '../../src/hbone/client.ts';
import { id, serviceYaml, TestMesh, type WaypointProcess, waypointYaml } from '../helpers/mesh.ts';

const WEB = { ip: '127.0.231.1', port: 8080 };
const POD_IP = '127.0.231.11';

let mesh: TestMesh;
let wp: WaypointProcess;
let client: HboneClient;
const seen: Array<{ method: string; url: string; host: string }> = [];

beforeAll(async () => {
  mesh = await TestMesh.create();
  await mesh.writeConfig(
    'mesh.yaml',
    [
      waypointYaml(),
      serviceYaml({ name: 'web', vip: WEB.ip, port: WEB.port, pods: [{ name: 'web-0', ip: POD_IP }] }),
      `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: no-admin
  namespace: shop
spec:
  targetRefs:
    - kind: Service
      group: ""
      name: web
  action: DENY
  rules:
    - to:
        - operation:
            paths: ["/admin*"]
`,
    ].join('---\n'),
  );
  const app = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', host: req.headers.host ?? '' });
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  await mesh.pod(POD_IP, WEB.port, app, id('shop', 'web'));
  wp = await mesh.spawnWaypoint([], { hboneIp: '127.0.231.100' });
  client = await mesh.hboneClient(id('shop', 'sleep'));
});
afterAll(() => mesh.close());

/** Writes raw bytes in a fresh tunnel; resolves with everything read until the waypoint ends it. */
async function exchange(bytes: string): Promise<string> {
  const tunnel = await TestMesh.tunnel(client, wp.hbone, WEB);
  const chunks: Buffer[] = [];
  tunnel.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((resolve) => {
    tunnel.once('end', () => resolve());
    tunnel.once('close', () => resolve());
  });
  tunnel.on('error', () => {});
  tunnel.write(bytes);
  await ended;
  tunnel.close();
  return Buffer.concat(chunks).toString('latin1');
}

const statusOf = (reply: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1]);

/** The waypoint is alive and still serves an ordinary request. */
async function stillServing(): Promise<void> {
  expect(wp.child.exitCode).toBeNull();
  const reply = await exchange('GET /ok HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n');
  expect(statusOf(reply)).toBe(200);
}

it('survives a client that resets its tunnel before the body of `OPTIONS *` it announced', async () => {
  const tunnel = await TestMesh.tunnel(client, wp.hbone, WEB);
  tunnel.on('error', () => {});
  const answered = new Promise<string>((resolve) =>
    tunnel.once('data', (c: Buffer) => resolve(c.toString())),
  );
  tunnel.write('OPTIONS * HTTP/1.1\r\nHost: web\r\nContent-Length: 10\r\n\r\n');
  // The waypoint answers without waiting for the body (Envoy: 404 absolute_path_rejected).
  expect(statusOf(await answered)).toBe(404);
  tunnel.close(h2.NGHTTP2_CANCEL);
  await stillServing();
});

it('answers a target undici cannot send with 400 before reading the body, and survives a reset', async () => {
  const tunnel = await TestMesh.tunnel(client, wp.hbone, WEB);
  tunnel.on('error', () => {});
  const answered = new Promise<string>((resolve) =>
    tunnel.once('data', (c: Buffer) => resolve(c.toString())),
  );
  tunnel.write('POST htp://web/x HTTP/1.1\r\nHost: web\r\nContent-Length: 10\r\n\r\n12345');
  const reply = await answered;
  expect(statusOf(reply)).toBe(400);
  expect(reply).toContain('x-waypoint-reason: invalid_request_target');
  tunnel.close(h2.NGHTTP2_CANCEL);
  await stillServing();
  expect(seen.some((s) => s.url.includes('htp:'))).toBe(false);
});

it('applies policies to absolute-form as to the origin-form path it names', async () => {
  const before = seen.length;
  const denied = await exchange('GET http://web/admin HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n');
  expect(statusOf(denied)).toBe(403);
  expect(denied).toContain('RBAC: access denied');
  expect(seen.length).toBe(before);
  // Allowed ones reach the application in origin-form, with the URI's authority as Host.
  const allowed = await exchange(
    'GET http://web.shop:8080/page?q=1 HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n',
  );
  expect(statusOf(allowed)).toBe(200);
  expect(seen.at(-1)).toEqual({ method: 'GET', url: '/page?q=1', host: 'web.shop:8080' });
});

it.each([
  ['asterisk-form with GET', 'GET * HTTP/1.1', 400],
  ['another scheme', 'GET ftp://web/admin HTTP/1.1', 400],
  ['userinfo in the authority', 'GET http://me@web/x HTTP/1.1', 400],
  ['a fragment', 'GET /x#admin HTTP/1.1', 400],
  ['neither origin- nor absolute-form', 'GET admin HTTP/1.1', 400],
])('refuses %s', async (_what, line, status) => {
  const before = seen.length;
  const reply = await exchange(`${line}\r\nHost: web\r\n\r\n`);
  expect(statusOf(reply)).toBe(status);
  expect(seen.length).toBe(before);
  expect(wp.child.exitCode).toBeNull();
});

it('refuses two Host headers with 400 (RFC 9112 §3.2)', async () => {
  const before = seen.length;
  const reply = await exchange('GET /ok HTTP/1.1\r\nHost: web\r\nHost: admin.internal\r\n\r\n');
  expect(statusOf(reply)).toBe(400);
  expect(reply).toContain('x-waypoint-reason: downstream_protocol_error');
  expect(seen.length).toBe(before);
});

it('answers a request whose FIN comes in the same write (printf | nc -N), then closes the tunnel', async () => {
  const tunnel = await TestMesh.tunnel(client, wp.hbone, WEB);
  tunnel.on('error', () => {});
  tunnel.end('GET /ok HTTP/1.1\r\nHost: web\r\n\r\n');
  let reply = '';
  for await (const c of tunnel) reply += (c as Buffer).toString('latin1');
  expect(statusOf(reply)).toBe(200);
  expect(reply.endsWith('ok')).toBe(true);
});
