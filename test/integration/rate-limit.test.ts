// Local (per replica) rate limits through a real waypoint: BackendTrafficPolicy attached to a
// Service or to the waypoint Gateway, exact counts per window (windows of an hour, so a test cannot
// straddle two), Distinct buckets per header value and per client principal, gRPC-shaped replies.
// Addresses: waypoint 127.0.170.2, VIPs 127.0.171.N, pods 127.0.172.N.
import http2 from 'node:http2';
import type { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HboneClient } from '../../src/hbone/client.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { id, metricValue, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const WAYPOINT_IP = '127.0.170.2';
const SLEEP = id('shop', 'sleep');
const OTHER = id('other', 'client');
const SERVICES = ['exact', 'distinct', 'principal', 'namespace', 'open', 'grpc', 'routed'] as const;
type Svc = (typeof SERVICES)[number];
const vip = (s: Svc) => `127.0.171.${10 + SERVICES.indexOf(s)}`;
const podIp = (s: Svc) => `127.0.172.${10 + SERVICES.indexOf(s)}`;

const policy = (
  name: string,
  target: string,
  rateLimit: string,
) => `apiVersion: waypoint.node-waypoint.io/v1alpha1
kind: BackendTrafficPolicy
metadata:
  name: ${name}
  namespace: shop
spec:
  targetRefs:
${target}
  rateLimit:
${rateLimit}`;

const service = (name: string) => `    - {group: "", kind: Service, name: ${name}}`;

const POLICIES = [
  policy(
    'exact',
    service('exact'),
    `    type: Local
    enableXRateLimitHeaders: true
    local:
      rules:
        - limit: {requests: 5, unit: Hour}
`,
  ),
  policy(
    'per-user',
    service('distinct'),
    `    type: Local
    local:
      rules:
        - clientSelectors: [{headers: [{name: x-user, type: Distinct}]}]
          limit: {requests: 2, unit: Hour}
`,
  ),
  policy(
    'per-principal',
    service('principal'),
    `    type: Local
    local:
      rules:
        - clientSelectors: [{sourcePrincipal: {type: Distinct}}]
          limit: {requests: 1, unit: Hour}
`,
  ),
  policy(
    'other-namespace',
    service('namespace'),
    `    type: Local
    local:
      rules:
        - clientSelectors: [{sourceNamespace: {value: other}}]
          limit: {requests: 1, unit: Hour}
`,
  ),
  policy(
    'no-grpc',
    service('grpc'),
    `    type: Local
    local:
      rules:
        - limit: {requests: 1, unit: Hour}
`,
  ),
  // Waypoint-wide: every Service, one bucket per destination Service (only with the header, so the
  // other cases are unaffected).
  policy(
    'gateway-wide',
    '    - {group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}',
    `    type: Local
    local:
      rules:
        - clientSelectors: [{headers: [{name: x-gateway-limit, value: "yes"}]}]
          limit: {requests: 1, unit: Hour}
`,
  ),
];

// Attachment to one rule of an HTTPRoute by sectionName (the rule's name).
const ROUTE = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: routed
  namespace: shop
spec:
  parentRefs:
    - {group: "", kind: Service, name: routed, port: 8080}
  rules:
    - name: writes
      matches: [{method: POST}]
      backendRefs: [{name: routed, port: 8080}]
    - name: reads
      backendRefs: [{name: routed, port: 8080}]
`;
POLICIES.push(
  policy(
    'writes-only',
    '    - {group: gateway.networking.k8s.io, kind: HTTPRoute, name: routed, sectionName: writes}',
    `    type: Local
    local:
      rules:
        - limit: {requests: 1, unit: Hour}
`,
  ),
);

let mesh: TestMesh;
let waypoint: Waypoint;
const clients = new Map<string, HboneClient>();
const pools = new Map<string, Pool>();

async function client(identity: string): Promise<HboneClient> {
  let c = clients.get(identity);
  if (!c) {
    c = await mesh.hboneClient(identity);
    clients.set(identity, c);
  }
  return c;
}

async function send(svc: Svc, opts: { as?: string; headers?: Record<string, string>; method?: string } = {}) {
  const as = opts.as ?? SLEEP;
  const key = `${as} ${svc}`;
  let p = pools.get(key);
  if (!p) {
    p = mesh.httpPool(await client(as), waypoint.addresses!.hbone, { ip: vip(svc), port: 8080 });
    pools.set(key, p);
  }
  const res = await p.request({
    method: (opts.method ?? 'GET') as 'GET',
    path: '/',
    headers: opts.headers ?? {},
  });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

/** n requests one after the other; their statuses. */
async function statuses(
  n: number,
  svc: Svc,
  opts: { as?: string; headers?: Record<string, string>; method?: string } = {},
) {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await send(svc, opts)).status);
  return out;
}

beforeAll(async () => {
  mesh = await TestMesh.create();
  const docs = [waypointYaml()];
  for (const s of SERVICES) {
    docs.push(
      serviceYaml({
        name: s,
        vip: vip(s),
        port: 8080,
        ...(s === 'grpc' ? { portName: 'grpc' } : {}),
        pods: [{ name: `${s}-a`, ip: podIp(s) }],
      }),
    );
  }
  await mesh.writeConfig('mesh.yaml', [...docs, ROUTE, ...POLICIES].join('---\n'));
  for (const s of SERVICES) {
    if (s === 'grpc') {
      const server = http2.createServer();
      server.on('stream', (st) => {
        st.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        st.on('wantTrailers', () => st.sendTrailers({ 'grpc-status': '0' }));
        st.end(Buffer.from([0, 0, 0, 0, 0]));
      });
      await mesh.pod(podIp(s), 8080, server as never, id('shop', s));
    } else await mesh.pod(podIp(s), 8080, TestMesh.echoServer(`${s}-a`), id('shop', s));
  }
  waypoint = await mesh.startWaypoint({
    ip: WAYPOINT_IP,
  });
  expect(waypoint.snapshot!.messages.filter((m) => m.kind === 'BackendTrafficPolicy')).toEqual([]);
});
afterAll(() => mesh.close());

describe('local rate limits at the waypoint', () => {
  it('allows exactly the limit, then answers 429 as Envoy does, with DRAFT_VERSION_03 headers', async () => {
    const first = [];
    for (let i = 0; i < 5; i++) first.push(await send('exact'));
    expect(first.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(first.map((r) => r.headers['x-ratelimit-remaining'])).toEqual(['4', '3', '2', '1', '0']);
    expect(first[0]!.headers['x-ratelimit-limit']).toBe('5, 5;w=3600');

    for (let i = 0; i < 2; i++) {
      const limited = await send('exact');
      expect(limited.status).toBe(429);
      expect(limited.body).toBe('local_rate_limited');
      expect(limited.headers['content-type']).toMatch(/^text\/plain/);
      expect(limited.headers['x-envoy-ratelimited']).toBe('true');
      expect(limited.headers['x-waypoint-reason']).toBe('local_rate_limited');
      expect(limited.headers['x-ratelimit-limit']).toBe('5, 5;w=3600');
      expect(limited.headers['x-ratelimit-remaining']).toBe('0');
      const reset = Number(limited.headers['x-ratelimit-reset']);
      expect(reset).toBeGreaterThan(3500);
      expect(reset).toBeLessThanOrEqual(3600);
    }

    const metrics = await waypoint.metrics.render();
    expect(
      metricValue(metrics, 'waypoint_rate_limit_decisions_total', { policy: 'shop/exact', result: 'ok' }),
    ).toBe(5);
    expect(
      metricValue(metrics, 'waypoint_rate_limit_decisions_total', {
        policy: 'shop/exact',
        result: 'over_limit',
      }),
    ).toBe(2);
    expect(metricValue(metrics, 'istio_requests_total', { response_flags: 'RL', response_code: '429' })).toBe(
      2,
    );
  });

  it('a Distinct header selector keeps one bucket per value; requests without the header are not counted', async () => {
    expect(await statuses(3, 'distinct', { headers: { 'x-user': 'alice' } })).toEqual([200, 200, 429]);
    expect(await statuses(3, 'distinct', { headers: { 'x-user': 'bob' } })).toEqual([200, 200, 429]);
    expect(await statuses(4, 'distinct')).toEqual([200, 200, 200, 200]);
  });

  it('limits by source principal (Distinct) and by source namespace', async () => {
    expect(await statuses(2, 'principal', { as: SLEEP })).toEqual([200, 429]);
    expect(await statuses(2, 'principal', { as: OTHER })).toEqual([200, 429]);

    expect(await statuses(3, 'namespace', { as: SLEEP })).toEqual([200, 200, 200]);
    expect(await statuses(2, 'namespace', { as: OTHER })).toEqual([200, 429]);
  });

  it('a Gateway-targeted policy applies to every Service, one bucket per destination', async () => {
    const h = { 'x-gateway-limit': 'yes' };
    expect(await statuses(2, 'open', { headers: h })).toEqual([200, 429]);
    // Another Service: its own bucket; a Service policy elsewhere does not reach it.
    expect(await statuses(2, 'distinct', { headers: h })).toEqual([200, 429]);
    expect(await statuses(3, 'open')).toEqual([200, 200, 200]);
  });

  it('answers a rate-limited gRPC call trailers-only with UNAVAILABLE (14)', async () => {
    const c = mesh.h2Client(await client(SLEEP), waypoint.addresses!.hbone, { ip: vip('grpc'), port: 8080 });
    const call = async () => {
      const res = await c.request({
        method: 'POST',
        path: '/shop.Catalog/GetItem',
        headers: { 'content-type': 'application/grpc', te: 'trailers' },
        body: Buffer.from([0, 0, 0, 0, 0]),
      });
      const body = await res.body.arrayBuffer();
      return { status: res.statusCode, headers: res.headers, trailers: res.trailers, bytes: body.byteLength };
    };
    const ok = await call();
    expect(ok.status).toBe(200);
    expect(ok.trailers['grpc-status']).toBe('0');
    const limited = await call();
    expect(limited.status).toBe(200);
    expect(limited.bytes).toBe(0);
    expect(limited.headers['grpc-status']).toBe('14');
    expect(limited.headers['grpc-message']).toBe('local_rate_limited');
    expect(limited.headers['x-envoy-ratelimited']).toBe('true');
  });

  it('a policy attached to an HTTPRoute rule by sectionName limits that rule only', async () => {
    expect(await statuses(2, 'routed', { method: 'POST' })).toEqual([200, 429]);
    expect(await statuses(3, 'routed', { method: 'GET' })).toEqual([200, 200, 200]);
  });
});
