// Global rate limits: two waypoint processes (`node-waypoint run --redis-url`) against one real
// redis-server share one budget, exactly, sequentially and under concurrent load.
// Addresses: Redis 127.0.170.1, waypoints 127.0.173.2 and .3, VIPs 127.0.174.N, pods 127.0.175.N.
import type { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { id, serviceYaml, TestMesh, type WaypointProcess, waypointYaml } from '../helpers/mesh.ts';
import { RedisServer } from '../helpers/redis.ts';

const SLEEP = id('shop', 'sleep');
const SERVICES = ['shared', 'loaded', 'unlimited'] as const;
type Svc = (typeof SERVICES)[number];
const vip = (s: Svc) => `127.0.174.${10 + SERVICES.indexOf(s)}`;
const podIp = (s: Svc) => `127.0.175.${10 + SERVICES.indexOf(s)}`;

const globalPolicy = (
  name: string,
  svc: Svc,
  requests: number,
) => `apiVersion: waypoint.node-waypoint.io/v1alpha1
kind: BackendTrafficPolicy
metadata:
  name: ${name}
  namespace: shop
spec:
  targetRefs:
    - {group: "", kind: Service, name: ${svc}}
  rateLimit:
    type: Global
    global:
      rules:
        - limit: {requests: ${requests}, unit: Hour}
`;

let mesh: TestMesh;
let redis: RedisServer;
let waypoints: WaypointProcess[];

function pool(w: WaypointProcess, svc: Svc, connections = 1): Promise<Pool> {
  return mesh
    .hboneClient(SLEEP)
    .then((c) => mesh.httpPool(c, w.hbone, { ip: vip(svc), port: 8080 }, { connections }));
}

async function get(p: Pool) {
  const res = await p.request({ method: 'GET', path: '/' });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

beforeAll(async () => {
  redis = await RedisServer.start();
  mesh = await TestMesh.create();
  mesh.onClose(() => redis.stop());
  const docs = [waypointYaml()];
  for (const s of SERVICES)
    docs.push(serviceYaml({ name: s, vip: vip(s), port: 8080, pods: [{ name: `${s}-a`, ip: podIp(s) }] }));
  docs.push(globalPolicy('shared', 'shared', 10), globalPolicy('loaded', 'loaded', 20));
  await mesh.writeConfig('mesh.yaml', docs.join('---\n'));
  for (const s of SERVICES) await mesh.pod(podIp(s), 8080, TestMesh.echoServer(`${s}-a`), id('shop', s));
  waypoints = await Promise.all(
    ['127.0.173.2', '127.0.173.3'].map((ip) =>
      mesh.spawnWaypoint(['--redis-url', redis.url, '--access-log', 'off'], { hboneIp: ip }),
    ),
  );
  await Promise.all(waypoints.map((w) => w.waitForStderr(/rate-limit: redis ready/)));
});
afterAll(() => mesh.close());

describe('global rate limits across waypoint replicas', () => {
  it('two waypoints share one budget: 6 requests through each of limit 10 give exactly 10 OK', async () => {
    const [a, b] = [await pool(waypoints[0]!, 'shared'), await pool(waypoints[1]!, 'shared')];
    const got: Array<{ via: string; status: number; body: string; headers: Record<string, unknown> }> = [];
    for (let i = 0; i < 6; i++) {
      got.push({ via: 'a', ...(await get(a)) });
      got.push({ via: 'b', ...(await get(b)) });
    }
    expect(got.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 429, 429]);
    const limited = got[10]!;
    expect(limited.body).toBe('');
    expect(limited.headers['x-envoy-ratelimited']).toBe('true');
    expect(limited.headers['x-waypoint-reason']).toBe('rate_limited');
    // Each replica answered once over the limit.
    expect(got.filter((r) => r.status === 429).map((r) => r.via)).toEqual(['a', 'b']);
  });

  it('holds under concurrent load: 50 concurrent requests over two replicas against limit 20 give exactly 20 OK', async () => {
    const [a, b] = [await pool(waypoints[0]!, 'loaded', 10), await pool(waypoints[1]!, 'loaded', 10)];
    const all = await Promise.all(Array.from({ length: 50 }, (_, i) => get(i % 2 === 0 ? a : b)));
    const counts = { ok: 0, limited: 0, other: 0 };
    for (const r of all) {
      if (r.status === 200) counts.ok++;
      else if (r.status === 429) counts.limited++;
      else counts.other++;
    }
    expect(counts).toEqual({ ok: 20, limited: 30, other: 0 });
  });

  it('a Service without a policy is not limited', async () => {
    const p = await pool(waypoints[0]!, 'unlimited');
    const got = [];
    for (let i = 0; i < 12; i++) got.push((await get(p)).status);
    expect(got.every((s) => s === 200)).toBe(true);
  });
});
