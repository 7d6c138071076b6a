// Retries through a real waypoint (l7-semantics.md §4.7, §5.1, §5.4): HTTPRoute retry codes,
// the mesh default (a 503 is not retried), VirtualService retryOn tokens, connect failures retried
// on the other endpoint, the no-route default (reset-before-request only), request-body replay and
// its cap, and no retry once the response started. Counts at the backend, not durations.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Waypoint } from '../../src/waypoint.ts';
import {
  accessLogCapture,
  ControllableBackend,
  flagsOf,
  requester,
} from '../helpers/controllable-backend.ts';
import { id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const WAYPOINT_IP = '127.0.181.100';
const FLAKY = '127.0.181.1'; // HTTPRoute; two pods
const VSR = '127.0.181.2'; // VirtualService retries; two pods
const HALF = '127.0.181.3'; // VirtualService connect-failure; one pod has no ztunnel listening
const BARE = '127.0.181.4'; // no route at all; one pod has no ztunnel listening

const HTTP_ROUTE = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: flaky, namespace: shop }
spec:
  parentRefs:
    - { group: "", kind: Service, name: flaky, port: 80 }
  rules:
    - matches: [{ path: { type: PathPrefix, value: /codes } }]
      retry: { codes: [503], attempts: 2, backoff: 1ms }
      backendRefs: [{ name: flaky, port: 80 }]
    - backendRefs: [{ name: flaky, port: 80 }]
`;

const vsRule = (
  prefix: string,
  retries: string,
  host: string,
) => `    - match: [{ uri: { prefix: ${prefix} } }]
      retries: ${retries}
      route: [{ destination: { host: ${host}.shop.svc.cluster.local } }]
`;

const VIRTUAL_SERVICES = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: vsr, namespace: shop }
spec:
  hosts: [vsr.shop.svc.cluster.local]
  http:
${vsRule('/5xx', '{ attempts: 1, retryOn: 5xx, backoff: 1ms }', 'vsr')}${vsRule('/gateway-error', '{ attempts: 1, retryOn: gateway-error, backoff: 1ms }', 'vsr')}${vsRule('/retriable-4xx', '{ attempts: 1, retryOn: retriable-4xx, backoff: 1ms }', 'vsr')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: half, namespace: shop }
spec:
  hosts: [half.shop.svc.cluster.local]
  http:
${vsRule('/no-retry', '{ attempts: 0 }', 'half')}${vsRule('/', '{ attempts: 2, retryOn: connect-failure, backoff: 1ms }', 'half')}`;

let mesh: TestMesh;
let waypoint: Waypoint;
let backend: ControllableBackend;
const log = accessLogCapture();

beforeAll(async () => {
  mesh = await TestMesh.create();
  const svc = (name: string, vip: string, pods: [string, string][]) =>
    serviceYaml({ name, vip, port: 80, targetPort: 8080, pods: pods.map(([n, ip]) => ({ name: n, ip })) });
  await mesh.writeConfig(
    'mesh.yaml',
    [
      waypointYaml(),
      svc('flaky', FLAKY, [
        ['flaky-0', '127.0.181.11'],
        ['flaky-1', '127.0.181.12'],
      ]),
      svc('vsr', VSR, [
        ['vsr-0', '127.0.181.13'],
        ['vsr-1', '127.0.181.14'],
      ]),
      svc('half', HALF, [
        ['half-live', '127.0.181.15'],
        ['half-dead', '127.0.181.16'],
      ]),
      svc('bare', BARE, [
        ['bare-live', '127.0.181.17'],
        ['bare-dead', '127.0.181.18'],
      ]),
      HTTP_ROUTE,
      VIRTUAL_SERVICES,
    ].join('---\n'),
  );
  // half-dead and bare-dead are not started: their HBONE port refuses connections.
  backend = await ControllableBackend.start(mesh, 8080, [
    { name: 'flaky-0', ip: '127.0.181.11', identity: id('shop', 'flaky') },
    { name: 'flaky-1', ip: '127.0.181.12', identity: id('shop', 'flaky') },
    { name: 'vsr-0', ip: '127.0.181.13', identity: id('shop', 'vsr') },
    { name: 'vsr-1', ip: '127.0.181.14', identity: id('shop', 'vsr') },
    { name: 'half-live', ip: '127.0.181.15', identity: id('shop', 'half') },
    { name: 'bare-live', ip: '127.0.181.17', identity: id('shop', 'bare') },
  ]);
  waypoint = await mesh.startWaypoint({
    ip: WAYPOINT_IP,
    accessLog: 'all',
    accessLogStream: log.stream,
    // JSON lines: the attempts of a retried request are a JSON key (the text format has no room).
    accessLogEncoding: 'json',
  });
});
afterAll(() => mesh.close());

const send = requester({
  mesh: () => mesh,
  waypoint: () => waypoint,
  log,
  prefix: 'retries',
  client: id('shop', 'sleep'),
});

/** The first request that reaches the backend gets `first`, every later one `rest`. */
function failFirst(first: Parameters<ControllableBackend['always']>[0], rest = {}): () => string | undefined {
  let failed: string | undefined;
  backend.script(({ pod }) => {
    if (failed !== undefined) return rest;
    failed = pod;
    return first;
  });
  return () => failed;
}

describe('HTTPRoute retry', () => {
  it('retries {codes:[503], attempts:2} twice: three requests at the backend, final 503, flag URX', async () => {
    backend.always({ status: 503, body: 'busy' });
    const r = await send(FLAKY, '/codes');
    expect(r.status).toBe(503);
    expect(r.body).toBe('busy');
    expect(backend.count()).toBe(3);
    const line = await r.line();
    expect(flagsOf(line)).toBe('URX');
    // Which attempt answered is on the (JSON) line (users-and-style.md A.19).
    expect(JSON.parse(line)).toMatchObject({
      attempts: 3,
      response_code: 503,
      waypoint_reason: 'via_upstream',
    });
  });

  it('does not retry a 503 on a rule without retry (current Istio default)', async () => {
    backend.always({ status: 503, body: 'busy' });
    const r = await send(FLAKY, '/plain');
    expect(r.status).toBe(503);
    expect(backend.count()).toBe(1);
    expect(flagsOf(await r.line())).toBe('-');
  });

  it('does not retry a status outside codes', async () => {
    backend.always({ status: 500 });
    const r = await send(FLAKY, '/codes');
    expect(r.status).toBe(500);
    expect(backend.count()).toBe(1);
  });
});

describe('VirtualService retryOn', () => {
  it('5xx: a 500 is retried once, on the other endpoint', async () => {
    const failedPod = failFirst({ status: 500 });
    const r = await send(VSR, '/5xx');
    expect(r.status).toBe(200);
    expect(backend.count()).toBe(2);
    expect(backend.count(failedPod())).toBe(1);
    expect(JSON.parse(r.body).pod).not.toBe(failedPod());
  });

  it('gateway-error: a 502 is retried, a 500 is not', async () => {
    failFirst({ status: 502 });
    expect((await send(VSR, '/gateway-error')).status).toBe(200);
    expect(backend.count()).toBe(2);
    failFirst({ status: 500 });
    expect((await send(VSR, '/gateway-error')).status).toBe(500);
    expect(backend.count()).toBe(1);
  });

  it('retriable-4xx: a 409 is retried, a 404 is not', async () => {
    failFirst({ status: 409 });
    expect((await send(VSR, '/retriable-4xx')).status).toBe(200);
    expect(backend.count()).toBe(2);
    failFirst({ status: 404 });
    expect((await send(VSR, '/retriable-4xx')).status).toBe(404);
    expect(backend.count()).toBe(1);
  });

  it('without retries, the endpoint whose HBONE port refuses fails half the requests with 503 UF', async () => {
    backend.always({});
    const failures: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await send(HALF, `/no-retry/${i}`);
      if (r.status === 200) continue;
      expect(r.status).toBe(503);
      expect(r.body).toMatch(
        /^upstream connect error or disconnect\/reset before headers\. reset reason: connection failure/,
      );
      failures.push(flagsOf(await r.line()));
    }
    // Each request picks either endpoint at even odds: 20 without a failure is a 1-in-a-million draw.
    expect(failures.length).toBeGreaterThan(0);
    expect(new Set(failures)).toEqual(new Set(['UF']));
  });

  it('connect-failure: an endpoint whose HBONE port refuses is retried on the other endpoint', async () => {
    backend.always({});
    for (let i = 0; i < 12; i++) {
      const r = await send(HALF, `/c${i}`);
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body).pod).toBe('half-live');
    }
    expect(backend.count('half-live')).toBe(12);
  });

  it('replays the request body identically on retry', async () => {
    const body = Buffer.alloc(20_000, 'a');
    for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff;
    failFirst({ status: 500 });
    const r = await send(VSR, '/5xx', { method: 'POST', body });
    expect(r.status).toBe(200);
    expect(backend.arrivals.map((a) => a.bytes)).toEqual([body.length, body.length]);
    expect(backend.arrivals[0]!.sha256).toBe(backend.arrivals[1]!.sha256);
  });

  it('streams a body larger than the replay cap once and does not retry it', async () => {
    const body = Buffer.alloc(200 * 1024, 'b');
    failFirst({ status: 500 });
    const r = await send(VSR, '/5xx', { method: 'POST', body });
    expect(r.status).toBe(500);
    expect(backend.arrivals.map((a) => a.bytes)).toEqual([body.length]);
  });

  it('never retries once the response started', async () => {
    failFirst({ status: 200, action: 'truncate' });
    const r = await send(VSR, '/5xx');
    expect(r.status).toBe(200);
    expect(r.error).toBeDefined(); // the client sees the reset, never a complete response
    expect(backend.count()).toBe(1);
  });
});

describe('no route (default retry: reset-before-request only)', () => {
  it('retries a connect failure on the other endpoint', async () => {
    backend.always({});
    for (let i = 0; i < 12; i++) {
      const r = await send(BARE, `/c${i}`);
      expect(r.status).toBe(200);
    }
    expect(backend.count('bare-live')).toBe(12);
  });

  it('does not retry a backend 500', async () => {
    backend.always({ status: 500 });
    for (let i = 0; i < 4; i++) expect((await send(BARE, `/e${i}`)).status).toBe(500);
    expect(backend.count('bare-live')).toBe(4);
  });
});
