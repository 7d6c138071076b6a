// DestinationRule at the waypoint (l7-semantics.md §4.10), through a real waypoint: load-balancer
// policies over two endpoints (round robin, random, least request by default), consistent hash on a
// header, a cookie (generated with a ttl), the source IP and a query parameter; the precedence of
// trafficPolicy, portLevelSettings and subset policy; and DR host short names resolved relative to
// the DR's namespace. Connection pools and outlier detection have their own suite.
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatAuthority } from '../../src/hbone/authority.ts';
import type { HboneClient } from '../../src/hbone/client.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { id, TestMesh, waypointYaml } from '../helpers/mesh.ts';

let mesh: TestMesh;
let waypoint: Waypoint;
let client: HboneClient;

/** Services by name: VIP and its two pods (`<name>-v1`, `<name>-v2`). */
const SERVICES = ['rr', 'random', 'lr', 'hdr', 'cookie', 'srcip', 'query', 'prec', 'nsres', 'nsres2'];
const vip = (name: string) => `127.0.192.${SERVICES.indexOf(name) + 1}`;
const podIp = (name: string, v: 1 | 2) => `127.0.193.${SERVICES.indexOf(name) * 2 + v}`;

function service(name: string): string {
  const docs = [
    `apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: shop }
spec:
  clusterIP: ${vip(name)}
  selector: { app: ${name} }
  ports:
    - { name: http, port: 80, targetPort: 8080 }
`,
  ];
  for (const v of [1, 2] as const)
    docs.push(`apiVersion: v1
kind: Pod
metadata:
  name: ${name}-v${v}
  namespace: shop
  labels: { app: ${name}, version: v${v} }
spec: { serviceAccountName: ${name} }
status:
  phase: Running
  podIP: ${podIp(name, v)}
  conditions: [{ type: Ready, status: "True" }]
`);
  return docs.join('---\n');
}

const dr = (
  name: string,
  trafficPolicy: string,
  ns = 'shop',
  host = name,
  extra = '',
) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}, namespace: ${ns} }
spec:
  host: ${host}
  trafficPolicy: ${trafficPolicy}
${extra}`;

const CONFIG = [
  waypointYaml(),
  ...SERVICES.map(service),
  dr('rr', '{ loadBalancer: { simple: ROUND_ROBIN } }'),
  dr('random', '{ loadBalancer: { simple: RANDOM } }'),
  dr('hdr', '{ loadBalancer: { consistentHash: { httpHeaderName: X-User } } }'),
  dr('cookie', '{ loadBalancer: { consistentHash: { httpCookie: { name: session, path: /, ttl: 60s } } } }'),
  dr('srcip', '{ loadBalancer: { consistentHash: { useSourceIp: true } } }'),
  dr('query', '{ loadBalancer: { consistentHash: { httpQueryParameterName: shard } } }'),
  // Top level RANDOM; port 80 overrides it with ROUND_ROBIN; the subset hashes on a header.
  dr(
    'prec',
    `
    loadBalancer: { simple: RANDOM }
    portLevelSettings:
      - { port: { number: 80 }, loadBalancer: { simple: ROUND_ROBIN } }`,
    'shop',
    'prec',
    `  subsets:
    - name: sticky
      labels: { app: prec }
      trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: x-user } } }
`,
  ),
  `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: prec, namespace: shop }
spec:
  hosts: [prec]
  http:
    - match: [{ uri: { prefix: /sticky } }]
      route: [{ destination: { host: prec, subset: sticky } }]
    - route: [{ destination: { host: prec } }]
`,
  // Short names are relative to the DR's namespace: `nsres` here means nsres.elsewhere, which
  // does not exist; `nsres2.shop` names the Service in shop.
  dr('nsres', '{ loadBalancer: { simple: ROUND_ROBIN } }', 'elsewhere', 'nsres'),
  dr('nsres2', '{ loadBalancer: { simple: ROUND_ROBIN } }', 'elsewhere', 'nsres2.shop'),
].join('---\n');

/** Held /hold requests wait for this; `holding` resolves with the pod that holds one. */
let release: () => void = () => {};
let held = new Promise<void>((r) => {
  release = r;
});
let arrived: (pod: string) => void = () => {};
const holding = new Promise<string>((r) => {
  arrived = r;
});

function holdingEcho(name: string): http.Server {
  const echo = TestMesh.echoServer(name).listeners('request')[0] as http.RequestListener;
  return http.createServer((req, res) => {
    if (req.url?.startsWith('/hold')) {
      arrived(name);
      held.then(() => echo(req, res));
    } else echo(req, res);
  });
}

beforeAll(async () => {
  mesh = await TestMesh.create();
  await mesh.writeConfig('mesh.yaml', CONFIG);
  for (const name of SERVICES)
    for (const v of [1, 2] as const)
      await mesh.pod(podIp(name, v), 8080, holdingEcho(`${name}-v${v}`), id('shop', name));
  const ip = '127.0.192.100';
  waypoint = await mesh.startWaypoint({
    ip: ip,
  });
  client = await mesh.hboneClient(id('shop', 'sleep'));
});
afterAll(() => {
  release();
  return mesh.close();
});

const pools = new Map<string, Pool>();

/** A pool to a Service's VIP whose tunnels say the client is `sourceIp` (forwarded: for=). */
function pool(service: string, sourceIp = '127.0.194.1'): Pool {
  const key = `${service}|${sourceIp}`;
  let p = pools.get(key);
  if (!p) {
    const destination = formatAuthority(vip(service), 80);
    const hbone = waypoint.addresses!.hbone;
    p = new Pool(`http://${destination}`, {
      connect: (_o, cb) => {
        client
          .open({ ip: hbone.ip, hbonePort: hbone.port, identity: id('shop', 'waypoint') }, destination, {
            forwarded: `for="${sourceIp}:40000"`,
          })
          .then(
            (s) => cb(null, s as unknown as Duplex as never),
            (e: Error) => cb(e, null),
          );
      },
    });
    const created = p;
    mesh.onClose(() => created.destroy());
    pools.set(key, p);
  }
  return p;
}

async function get(service: string, path = '/', headers: Record<string, string> = {}, sourceIp?: string) {
  const res = await pool(service, sourceIp).request({
    method: 'GET',
    path,
    headers: { host: service, ...headers },
  });
  const body = (await res.body.json()) as { pod: string };
  expect(res.statusCode).toBe(200);
  return { pod: body.pod, setCookie: res.headers['set-cookie'] };
}

async function pods(n: number, service: string, path = '/', headers: Record<string, string> = {}) {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push((await get(service, path, headers)).pod);
  return out;
}

const alternates = (list: readonly string[]) => list.every((p, i) => i === 0 || p !== list[i - 1]);

describe('loadBalancer.simple', () => {
  it('ROUND_ROBIN alternates exactly over two endpoints', async () => {
    const seen = await pods(20, 'rr');
    expect(alternates(seen)).toBe(true);
    expect(new Set(seen)).toEqual(new Set(['rr-v1', 'rr-v2']));
  });

  it('RANDOM uses both endpoints, not in strict alternation', async () => {
    const seen = await pods(50, 'random');
    expect(new Set(seen)).toEqual(new Set(['random-v1', 'random-v2']));
    expect(alternates(seen)).toBe(false);
  });

  it('LEAST_REQUEST by default: while one endpoint holds a request, the other takes the rest', async () => {
    const hold = pool('lr').request({ method: 'GET', path: '/hold', headers: { host: 'lr' } });
    // The held request is active on its endpoint once the pod has it.
    const busy = await holding;
    const seen = await pods(20, 'lr');
    expect(seen.every((p) => p !== busy)).toBe(true);
    release();
    const res = await hold;
    expect(((await res.body.json()) as { pod: string }).pod).toBe(busy);
    held = new Promise<void>((r) => {
      release = r;
    });
    // Idle again: both endpoints take requests.
    expect(new Set(await pods(40, 'lr')).size).toBe(2);
  });
});

describe('loadBalancer.consistentHash', () => {
  it('httpHeaderName: the same value sticks to one pod, different values spread', async () => {
    const seen = await pods(50, 'hdr', '/', { 'x-user': 'alice' });
    expect(new Set(seen).size).toBe(1);
    const spread = new Set<string>();
    for (let i = 0; i < 20; i++) spread.add((await get('hdr', '/', { 'x-user': `user-${i}` })).pod);
    expect(spread.size).toBe(2);
  });

  it('httpCookie with a ttl: generates the cookie, which then sticks', async () => {
    const first = await get('cookie');
    const cookie = String(first.setCookie);
    expect(cookie).toMatch(/^session="[^"]+"; Max-Age=60; Path=\/; HttpOnly$/);
    const value = cookie.split(';')[0]!;
    for (let i = 0; i < 20; i++) {
      const r = await get('cookie', '/', { cookie: value });
      expect(r.pod).toBe(first.pod);
      expect(r.setCookie).toBeUndefined();
    }
  });

  it('useSourceIp: one client sticks to one pod, clients spread', async () => {
    const one: string[] = [];
    for (let i = 0; i < 20; i++) one.push((await get('srcip', '/', {}, '127.0.194.7')).pod);
    expect(new Set(one).size).toBe(1);
    const spread = new Set<string>();
    for (let i = 1; i <= 16; i++) spread.add((await get('srcip', '/', {}, `127.0.195.${i}`)).pod);
    expect(spread.size).toBe(2);
  });

  it('httpQueryParameterName: the same value sticks, different values spread', async () => {
    expect(new Set(await pods(30, 'query', '/x?shard=a&other=1')).size).toBe(1);
    const spread = new Set<string>();
    for (let i = 0; i < 20; i++) spread.add((await get('query', `/x?shard=s${i}`)).pod);
    expect(spread.size).toBe(2);
  });
});

describe('precedence and host resolution', () => {
  it('portLevelSettings override the top-level policy', async () => {
    expect(alternates(await pods(20, 'prec'))).toBe(true);
  });

  it("a subset's trafficPolicy overrides both", async () => {
    expect(new Set(await pods(30, 'prec', '/sticky', { 'x-user': 'bob' })).size).toBe(1);
  });

  it("resolves a DR's short host in the DR's own namespace", async () => {
    // nsres.elsewhere is not this Service: default LEAST_REQUEST, no strict alternation.
    expect(alternates(await pods(30, 'nsres'))).toBe(false);
    // nsres2.shop is: ROUND_ROBIN.
    expect(alternates(await pods(20, 'nsres2'))).toBe(true);
  });
});
