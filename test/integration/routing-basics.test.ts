// Routing basics through a real waypoint: an HTTPRoute splits by weight across two Services,
// unmatched requests get 404, header modifiers apply, and a Service without routes keeps its
// default route. The Gateway API mesh conformance cases live in routing-conformance.test.ts.
import http from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Waypoint } from '../../src/waypoint.ts';
import { eventually, id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

let mesh: TestMesh;
let waypoint: Waypoint;

const ROUTE = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: split
  namespace: shop
spec:
  parentRefs:
    - { group: "", kind: Service, name: echo, port: 80 }
  rules:
    - name: api
      matches:
        - path: { type: PathPrefix, value: /api }
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier:
            set: [{ name: X-Route, value: api }]
        - type: ResponseHeaderModifier
          responseHeaderModifier:
            set: [{ name: X-Served-By-Route, value: split }]
      backendRefs:
        - { name: echo-v1, port: 8080, weight: 70 }
        - { name: echo-v2, port: 8080, weight: 30 }
    - name: moved
      matches:
        - path: { type: PathPrefix, value: /old }
      filters:
        - type: CORS
          cors:
            allowOrigins: ["https://app.example"]
        - type: RequestRedirect
          requestRedirect: { path: { type: ReplacePrefixMatch, replacePrefixMatch: /new } }
    - name: mirrored
      matches:
        - path: { type: Exact, value: /orders }
      filters:
        - type: RequestMirror
          requestMirror:
            backendRef: { name: shadow, port: 8080 }
      backendRefs:
        - { name: echo-v1, port: 8080 }
`;

/** What the mirror's app received: method, path, host and body of each copy. */
const shadowSeen: { method: string; path: string; host: string; body: string }[] = [];
/** The mirror holds its answers until the test releases them. */
const shadowHeld: Array<() => void> = [];

beforeAll(async () => {
  mesh = await TestMesh.create();
  await mesh.writeConfig(
    'mesh.yaml',
    [
      waypointYaml(),
      serviceYaml({
        name: 'echo',
        vip: '127.0.150.1',
        port: 80,
        targetPort: 8080,
        pods: [{ name: 'echo-0', ip: '127.0.151.1' }],
      }),
      serviceYaml({
        name: 'echo-v1',
        vip: '127.0.150.2',
        port: 8080,
        pods: [{ name: 'echo-v1-0', ip: '127.0.151.2' }],
      }),
      serviceYaml({
        name: 'echo-v2',
        vip: '127.0.150.3',
        port: 8080,
        pods: [{ name: 'echo-v2-0', ip: '127.0.151.3' }],
      }),
      serviceYaml({
        name: 'plain',
        vip: '127.0.150.4',
        port: 80,
        targetPort: 8080,
        pods: [{ name: 'plain-0', ip: '127.0.151.4' }],
      }),
      serviceYaml({
        name: 'shadow',
        vip: '127.0.150.5',
        port: 8080,
        pods: [{ name: 'shadow-0', ip: '127.0.151.5' }],
      }),
      ROUTE,
    ].join('---\n'),
  );
  for (const [ip, name, sa] of [
    ['127.0.151.1', 'echo-0', 'echo'],
    ['127.0.151.2', 'echo-v1-0', 'echo-v1'],
    ['127.0.151.3', 'echo-v2-0', 'echo-v2'],
    ['127.0.151.4', 'plain-0', 'plain'],
  ] as const)
    await mesh.pod(ip, 8080, TestMesh.echoServer(name), id('shop', sa));
  const shadow = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      shadowSeen.push({
        method: req.method ?? '',
        path: req.url ?? '',
        host: req.headers.host ?? '',
        body: Buffer.concat(chunks).toString(),
      });
      // The mirror's answer is held, then an error: neither may reach or delay the client.
      shadowHeld.push(() => res.writeHead(500).end('shadow'));
    });
  });
  await mesh.pod('127.0.151.5', 8080, shadow, id('shop', 'shadow'));
  const ip = '127.0.150.100';
  waypoint = await mesh.startWaypoint({
    ip: ip,
  });
});
afterAll(() => {
  for (const release of shadowHeld.splice(0)) release();
  return mesh.close();
});

const pools = new Map<string, ReturnType<TestMesh['httpPool']>>();

async function get(
  vip: string,
  path: string,
  method = 'GET',
  body?: string,
  headers: Record<string, string> = {},
) {
  let pool = pools.get(vip);
  if (!pool) {
    pool = mesh.httpPool(await mesh.hboneClient(id('shop', 'sleep')), waypoint.addresses!.hbone, {
      ip: vip,
      port: 80,
    });
    pools.set(vip, pool);
  }
  const res = await pool.request({
    method,
    path,
    headers: { host: 'echo', ...headers },
    ...(body ? { body } : {}),
  });
  const text = await res.body.text();
  return {
    status: res.statusCode,
    headers: res.headers,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
  };
}

it('splits a route 70/30 across two Services and applies its header modifiers', async () => {
  const counts: Record<string, number> = {};
  for (let i = 0; i < 300; i++) {
    const r = await get('127.0.150.1', '/api/x');
    expect(r.status).toBe(200);
    const pod = String(r.body.pod);
    counts[pod] = (counts[pod] ?? 0) + 1;
    if (i === 0) {
      expect((r.body.headers as Record<string, string>)['x-route']).toBe('api');
      expect(r.headers['x-served-by-route']).toBe('split');
    }
  }
  expect((counts['echo-v1-0'] ?? 0) / 300).toBeGreaterThan(0.6);
  expect((counts['echo-v1-0'] ?? 0) / 300).toBeLessThan(0.8);
  expect((counts['echo-v1-0'] ?? 0) + (counts['echo-v2-0'] ?? 0)).toBe(300);
  // The rule's name is carried into metrics: istio_requests_total names the backend Service,
  // waypoint_requests_total the route rule.
  const text = await waypoint.metrics.registry.metrics();
  expect(text).toMatch(
    /waypoint_requests_total\{reason="via_upstream",response_code="200",response_flags="-",route="shop\.split\.api"\} 300/,
  );
  expect(text).toMatch(
    /istio_requests_total\{[^}]*destination_service="echo-v2\.shop\.svc\.cluster\.local"[^}]*\} \d+/,
  );
});

it('answers 404 route_not_found when no rule matches', async () => {
  const r = await get('127.0.150.1', '/other');
  expect(r.status).toBe(404);
  expect(r.headers['x-waypoint-reason']).toBe('route_not_found');
});

it('sends a Service without routes to its own endpoints', async () => {
  const r = await get('127.0.150.4', '/anything');
  expect(r.status).toBe(200);
  expect(r.body.pod).toBe('plain-0');
});

it('mirrors a request to another Service without waiting for or showing its answer', async () => {
  // The mirror holds its answer until after the client has its own: a waypoint that waited for
  // the mirror would never answer here.
  const r = await get('127.0.150.1', '/orders', 'POST', 'order-42');
  expect(r.status).toBe(200);
  expect(r.body.pod).toBe('echo-v1-0');
  expect(r.body.bytes).toBe(8);
  await eventually(() => shadowSeen.length === 1 || undefined, 'the mirrored request');
  expect(shadowSeen[0]).toEqual({ method: 'POST', path: '/orders', host: 'echo-shadow', body: 'order-42' });
  for (const release of shadowHeld.splice(0)) release();
});

it("adds the route's CORS headers to its redirect, a local reply", async () => {
  const r = await get('127.0.150.1', '/old/page', 'GET', undefined, { origin: 'https://app.example' });
  expect(r.status).toBe(302);
  expect(r.headers.location).toBe('http://echo/new/page');
  expect(r.headers['access-control-allow-origin']).toBe('https://app.example');
});
