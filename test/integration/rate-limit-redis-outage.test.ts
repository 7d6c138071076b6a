// Redis killed under two waypoint processes: the one run with the default failure mode (open) lets
// requests through and counts each in waypoint_rate_limit_redis_failures_total; the one run with
// `--redis-failure-mode closed` refuses them (500, RLSE). Neither crashes or hangs, and both enforce
// the limit again once a new redis-server comes up on the same address.
// Addresses: Redis 127.0.170.1, waypoints 127.0.176.2 (open) and .3 (closed), VIPs 127.0.177.N,
// pods 127.0.178.N.
import type { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  eventually,
  getText,
  id,
  metricValue,
  serviceYaml,
  TestMesh,
  type WaypointProcess,
  waypointYaml,
} from '../helpers/mesh.ts';
import { RedisServer } from '../helpers/redis.ts';

const SLEEP = id('shop', 'sleep');
const SERVICES = ['via-open', 'via-closed'] as const;
type Svc = (typeof SERVICES)[number];
const vip = (s: Svc) => `127.0.177.${10 + SERVICES.indexOf(s)}`;
const podIp = (s: Svc) => `127.0.178.${10 + SERVICES.indexOf(s)}`;

const globalPolicy = (svc: Svc) => `apiVersion: waypoint.node-waypoint.io/v1alpha1
kind: BackendTrafficPolicy
metadata:
  name: ${svc}
  namespace: shop
spec:
  targetRefs:
    - {group: "", kind: Service, name: ${svc}}
  rateLimit:
    type: Global
    global:
      rules:
        - limit: {requests: 3, unit: Hour}
`;

let mesh: TestMesh;
let redis: RedisServer;
let open: WaypointProcess;
let closed: WaypointProcess;
let openPool: Pool;
let closedPool: Pool;

async function get(p: Pool) {
  const res = await p.request({ method: 'GET', path: '/', headersTimeout: 5_000 });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

async function statuses(p: Pool, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await get(p)).status);
  return out;
}

async function failures(w: WaypointProcess, mode: string): Promise<number> {
  const { body } = await getText(w.metrics, '/stats/prometheus');
  return metricValue(body, 'waypoint_rate_limit_redis_failures_total', { mode });
}

beforeAll(async () => {
  redis = await RedisServer.start();
  mesh = await TestMesh.create();
  mesh.onClose(() => redis.stop());
  const docs = [waypointYaml()];
  for (const s of SERVICES)
    docs.push(
      serviceYaml({ name: s, vip: vip(s), port: 8080, pods: [{ name: `${s}-a`, ip: podIp(s) }] }),
      globalPolicy(s),
    );
  await mesh.writeConfig('mesh.yaml', docs.join('---\n'));
  for (const s of SERVICES) await mesh.pod(podIp(s), 8080, TestMesh.echoServer(`${s}-a`), id('shop', s));
  [open, closed] = await Promise.all([
    mesh.spawnWaypoint(['--redis-url', redis.url, '--access-log', 'off'], { hboneIp: '127.0.176.2' }),
    mesh.spawnWaypoint(['--redis-url', redis.url, '--redis-failure-mode', 'closed', '--access-log', 'off'], {
      hboneIp: '127.0.176.3',
    }),
  ]);
  await Promise.all([open, closed].map((w) => w.waitForStderr(/rate-limit: redis ready/)));
  const client = await mesh.hboneClient(SLEEP);
  openPool = mesh.httpPool(client, open.hbone, { ip: vip('via-open'), port: 8080 });
  closedPool = mesh.httpPool(client, closed.hbone, { ip: vip('via-closed'), port: 8080 });
});
afterAll(() => mesh.close());

describe('when Redis goes away', () => {
  it('enforces the limit while Redis is up', async () => {
    expect(await statuses(openPool, 4)).toEqual([200, 200, 200, 429]);
    expect(await statuses(closedPool, 4)).toEqual([200, 200, 200, 429]);
  });

  it('fails open (allowed, counted, logged) or closed (500 RLSE) per --redis-failure-mode, without crashing', async () => {
    await redis.kill();

    // Closed: refused with Envoy Gateway's failClosed answer, once the client notices the outage.
    const refused = await eventually(async () => {
      const r = await get(closedPool);
      return r.status === 500 ? r : undefined;
    }, 'the fail-closed waypoint to refuse');
    expect(refused.body).toBe('');
    expect(refused.headers['x-waypoint-reason']).toBe('rate_limit_service_error');
    expect(await statuses(closedPool, 3)).toEqual([500, 500, 500]);
    expect(await failures(closed, 'closed')).toBeGreaterThanOrEqual(4);

    // Open: the budget is spent, yet requests pass, each one counted as a Redis failure.
    const before = await failures(open, 'open');
    // A request that hung on Redis would fail on the pool's 5 s headers timeout instead.
    expect(await statuses(openPool, 5)).toEqual([200, 200, 200, 200, 200]);
    expect((await failures(open, 'open')) - before).toBe(5);

    for (const w of [open, closed]) {
      expect(w.child.exitCode).toBeNull();
      // Logged, but not once per request.
      const lines = w
        .stderr()
        .split('\n')
        .filter((l) => l.includes('rate-limit: redis unavailable'));
      expect(lines.length).toBeGreaterThanOrEqual(1);
      expect(lines.length).toBeLessThanOrEqual(3);
    }
  });

  it('recovers when Redis returns on the same address', async () => {
    await redis.restart();
    // The new Redis is empty: the fail-closed waypoint lets requests through again...
    await eventually(
      async () => (await get(closedPool)).status === 200,
      'the fail-closed waypoint to recover',
      15_000,
    );
    // ...and the fail-open one counts again: within the limit of 3 a request is refused.
    await eventually(
      async () => (await get(openPool)).status === 429,
      'the fail-open waypoint to enforce again',
      15_000,
    );
    await open.waitForStderr(/rate-limit: redis reachable again/);
    expect(open.child.exitCode).toBeNull();
    expect(closed.child.exitCode).toBeNull();
  });
});
