// ServiceEntries through a real waypoint: an HTTPRoute attached to a MESH_INTERNAL ServiceEntry
// splits across two ServiceEntries whose endpoints sit behind ztunnel stand-ins (HBONE), and
// MESH_EXTERNAL ServiceEntries reach servers that speak no HBONE at all and have no stand-in (HTTP/1.1,
// HTTP/2, an upgrade, TCP): the waypoint connects to them directly, as Istio's egress waypoint does.
import type http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { HboneClient } from '../../src/hbone/client.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { id, TestMesh, waypointYaml } from '../helpers/mesh.ts';

let mesh: TestMesh;
let waypoint: Waypoint;
let client: HboneClient;

function serviceEntry(opts: {
  name: string;
  host: string;
  vip: string;
  port: number;
  protocol: string;
  location: 'MESH_INTERNAL' | 'MESH_EXTERNAL';
  endpoint?: { ip: string; port: number; sa?: string };
}): string {
  const ep = opts.endpoint;
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: ${opts.name}
  namespace: shop
spec:
  hosts: [${opts.host}]
  addresses: [${opts.vip}]
  ports:
    - { number: ${opts.port}, name: ${opts.protocol.toLowerCase()}, protocol: ${opts.protocol} }
  location: ${opts.location}
  resolution: STATIC
${ep ? `  endpoints:\n    - { address: ${ep.ip}, ports: { ${opts.protocol.toLowerCase()}: ${ep.port} }${ep.sa ? `, serviceAccount: ${ep.sa}` : ''} }\n` : ''}`;
}

const SE = 'group: networking.istio.io, kind: ServiceEntry';

const CONFIG = [
  waypointYaml(),
  serviceEntry({
    name: 'internal',
    host: 'internal.shop.mesh',
    vip: '127.0.210.1',
    port: 80,
    protocol: 'HTTP',
    location: 'MESH_INTERNAL',
    endpoint: { ip: '127.0.211.1', port: 8080, sa: 'internal' },
  }),
  serviceEntry({
    name: 'internal-v1',
    host: 'internal-v1.shop.mesh',
    vip: '127.0.210.2',
    port: 8080,
    protocol: 'HTTP',
    location: 'MESH_INTERNAL',
    endpoint: { ip: '127.0.211.2', port: 8080, sa: 'internal-v1' },
  }),
  serviceEntry({
    name: 'internal-v2',
    host: 'internal-v2.shop.mesh',
    vip: '127.0.210.3',
    port: 8080,
    protocol: 'HTTP',
    location: 'MESH_INTERNAL',
    endpoint: { ip: '127.0.211.3', port: 8080, sa: 'internal-v2' },
  }),
  serviceEntry({
    name: 'external',
    host: 'api.external.test',
    vip: '127.0.210.10',
    port: 80,
    protocol: 'HTTP',
    location: 'MESH_EXTERNAL',
    endpoint: { ip: '127.0.212.1', port: 8080 },
  }),
  serviceEntry({
    name: 'external-tcp',
    host: 'db.external.test',
    vip: '127.0.210.20',
    port: 9000,
    protocol: 'TCP',
    location: 'MESH_EXTERNAL',
    endpoint: { ip: '127.0.212.2', port: 9000 },
  }),
  serviceEntry({
    name: 'external-h2',
    host: 'h2.external.test',
    vip: '127.0.210.40',
    port: 80,
    protocol: 'HTTP2',
    location: 'MESH_EXTERNAL',
    endpoint: { ip: '127.0.212.3', port: 8080 },
  }),
  serviceEntry({
    name: 'front',
    host: 'front.external.test',
    vip: '127.0.210.30',
    port: 80,
    protocol: 'HTTP',
    location: 'MESH_EXTERNAL',
  }),
  `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: split
  namespace: shop
spec:
  parentRefs:
    - { ${SE}, name: internal, port: 80 }
  rules:
    - backendRefs:
        - { ${SE}, name: internal-v1, port: 8080, weight: 50 }
        - { ${SE}, name: internal-v2, port: 8080, weight: 50 }
`,
  `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: by-host
  namespace: shop
spec:
  parentRefs:
    - { ${SE}, name: front }
  rules:
    - backendRefs:
        - { group: networking.istio.io, kind: Hostname, name: api.external.test, port: 80 }
`,
  `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: no-admin-egress
  namespace: shop
spec:
  targetRefs:
    - { group: networking.istio.io, kind: ServiceEntry, name: external }
  action: DENY
  rules:
    - to:
        - operation: { paths: ["/admin*"] }
`,
  `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: external
  namespace: shop
spec:
  hosts: [api.external.test]
  http:
    - headers:
        request: { set: { x-egress: via-waypoint } }
      route:
        - destination: { host: api.external.test, port: { number: 80 } }
`,
].join('---\n');

function listen(server: net.Server, ip: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, ip, () => resolve());
  });
}

beforeAll(async () => {
  mesh = await TestMesh.create();
  await mesh.writeConfig('mesh.yaml', CONFIG);
  for (const [ip, name, sa] of [
    ['127.0.211.1', 'internal-0', 'internal'],
    ['127.0.211.2', 'internal-v1-0', 'internal-v1'],
    ['127.0.211.3', 'internal-v2-0', 'internal-v2'],
  ] as const)
    await mesh.pod(ip, 8080, TestMesh.echoServer(name), id('shop', sa));
  // Outside the mesh: no ztunnel stand-in, nothing listens on 15008 there.
  const external = TestMesh.echoServer('external-0');
  await listen(external, '127.0.212.1', 8080);
  // Takes any upgrade and echoes the upgraded bytes.
  external.on('upgrade', (_req: http.IncomingMessage, socket: net.Socket) => {
    socket.on('error', () => {});
    socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: echo\r\nconnection: Upgrade\r\n\r\n');
    socket.pipe(socket);
  });
  const h2 = http2.createServer((req, res) => {
    res.writeHead(200, { 'x-h2': 'yes' });
    res.end(`h2 ${req.httpVersion} ${req.url}`);
  });
  await listen(h2, '127.0.212.3', 8080);
  mesh.onClose(() => new Promise<void>((r) => h2.close(() => r())));
  const echo = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  await listen(echo, '127.0.212.2', 9000);
  mesh.onClose(
    () =>
      new Promise<void>((r) => {
        (external as http.Server).closeAllConnections();
        external.close(() => r());
      }),
  );
  mesh.onClose(() => new Promise<void>((r) => echo.close(() => r())));
  const ip = '127.0.213.100';
  waypoint = await mesh.startWaypoint({
    ip: ip,
  });
  client = await mesh.hboneClient(id('shop', 'sleep'));
});
afterAll(() => mesh.close());

const pools = new Map<string, ReturnType<TestMesh['httpPool']>>();

async function get(vip: string, path: string, host: string) {
  let pool = pools.get(vip);
  if (!pool) {
    pool = mesh.httpPool(client, waypoint.addresses!.hbone, { ip: vip, port: 80 });
    pools.set(vip, pool);
  }
  const res = await pool.request({ method: 'GET', path, headers: { host } });
  const text = await res.body.text();
  return {
    status: res.statusCode,
    headers: res.headers,
    body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : { text },
  };
}

it('routes an HTTPRoute attached to a ServiceEntry across two ServiceEntry backends over HBONE', async () => {
  const counts: Record<string, number> = {};
  for (let i = 0; i < 100; i++) {
    const r = await get('127.0.210.1', '/split', 'internal.shop.mesh');
    expect(r.status).toBe(200);
    const pod = String(r.body.pod);
    counts[pod] = (counts[pod] ?? 0) + 1;
  }
  expect((counts['internal-v1-0'] ?? 0) + (counts['internal-v2-0'] ?? 0)).toBe(100);
  // 50/50 over 100 requests: each side below 10 has odds far under one in a billion.
  expect(counts['internal-v1-0']).toBeGreaterThan(10);
  expect(counts['internal-v2-0']).toBeGreaterThan(10);
  const status = waypoint.snapshot?.messages.map((m) => m.message).join('\n') ?? '';
  expect(status).not.toMatch(/HTTPRoute shop\/split/);
});

it('reaches a MESH_EXTERNAL endpoint directly over plain HTTP, with the VirtualService on its host applied', async () => {
  const r = await get('127.0.210.10', '/egress', 'api.external.test');
  expect(r.status).toBe(200);
  expect(r.body.pod).toBe('external-0');
  expect(r.body.path).toBe('/egress');
  expect((r.body.headers as Record<string, string>)['x-egress']).toBe('via-waypoint');
});

it('splices a TCP port of a MESH_EXTERNAL ServiceEntry to a plain TCP server', async () => {
  const got = await TestMesh.ping(client, waypoint.addresses!.hbone, { ip: '127.0.210.20', port: 9000 });
  expect(got).toBe('ping');
});

it('sends to a Hostname backendRef naming a ServiceEntry host', async () => {
  const r = await get('127.0.210.30', '/by-host', 'front.external.test');
  expect(r.status).toBe(200);
  expect(r.body.pod).toBe('external-0');
  expect(r.body.path).toBe('/by-host');
});

it('speaks HTTP/2 to a MESH_EXTERNAL endpoint over plain TCP', async () => {
  const c = mesh.h2Client(client, waypoint.addresses!.hbone, { ip: '127.0.210.40', port: 80 });
  const res = await c.request({ method: 'GET', path: '/h2', headers: { host: 'h2.external.test' } });
  expect(res.statusCode).toBe(200);
  expect(res.headers['x-h2']).toBe('yes');
  expect(await res.body.text()).toBe('h2 2.0 /h2');
});

it('carries an HTTP/1.1 upgrade to a MESH_EXTERNAL endpoint over plain TCP', async () => {
  const pool = mesh.httpPool(client, waypoint.addresses!.hbone, { ip: '127.0.210.10', port: 80 });
  const { socket } = await pool.upgrade({
    path: '/up',
    protocol: 'echo',
    headers: { host: 'api.external.test' },
  });
  const echoed = await new Promise<string>((resolve, reject) => {
    let got = '';
    socket.on('data', (d: Buffer) => {
      got += d.toString();
      if (got === 'hello') resolve(got);
    });
    socket.on('error', reject);
    socket.write('hello');
  });
  socket.destroy();
  expect(echoed).toBe('hello');
});

it('enforces an AuthorizationPolicy that targets a ServiceEntry', async () => {
  const denied = await get('127.0.210.10', '/admin/keys', 'api.external.test');
  expect(denied.status).toBe(403);
  expect(denied.body.text).toBe('RBAC: access denied');
  expect((await get('127.0.210.10', '/public', 'api.external.test')).status).toBe(200);
});
