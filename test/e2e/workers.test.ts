// `node-waypoint run --concurrency 2`, as real processes: both workers serve the same HBONE port
// (SO_REUSEPORT), 15020 sums them, 15021 is one readiness, a local rate limit admits K across both,
// a config edit reaches both, a killed worker comes back, and SIGTERM drains both and exits 0 with
// requests in flight completing. Connections are spread by the kernel, so each request opens its own
// HBONE connection and loops run until both workers were seen (bounded in count).
// Addresses: waypoint 127.23.0.2, VIPs 127.23.1.N, pods 127.23.2.N.
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HboneClient } from '../../src/hbone/client.ts';
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

const ECHO = { ip: '127.23.1.10', port: 9080 };
const LIMITED = { ip: '127.23.1.20', port: 9080 };
const ADDED = { ip: '127.23.1.30', port: 9080 };
const LIMIT = 5;
const SLEEP = id('shop', 'sleep');

const limitPolicy = `apiVersion: waypoint.node-waypoint.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: limited, namespace: shop}
spec:
  targetRefs: [{group: "", kind: Service, name: limited}]
  rateLimit:
    type: Local
    local:
      rules:
        - limit: {requests: ${LIMIT}, unit: Hour}
`;

const services = (withAdded: boolean): string =>
  [
    waypointYaml(),
    serviceYaml({
      name: 'echo',
      vip: ECHO.ip,
      port: ECHO.port,
      pods: [{ name: 'echo-a', ip: '127.23.2.11' }],
    }),
    serviceYaml({
      name: 'limited',
      vip: LIMITED.ip,
      port: LIMITED.port,
      pods: [{ name: 'lim-a', ip: '127.23.2.21' }],
    }),
    limitPolicy,
    ...(withAdded
      ? [
          serviceYaml({
            name: 'added',
            vip: ADDED.ip,
            port: ADDED.port,
            pods: [{ name: 'add-a', ip: '127.23.2.31' }],
          }),
        ]
      : []),
  ].join('---\n');

/** Answers `NAME PATH`; /hold/* waits until release() (to have requests in flight at SIGTERM). */
function backend(name: string) {
  const held: Array<() => void> = [];
  const server = http.createServer((req, res) => {
    req.resume();
    const answer = () => res.end(`${name} ${req.url}`);
    if (req.url?.startsWith('/hold/')) held.push(answer);
    else answer();
  });
  return {
    server,
    held,
    release: () => {
      for (const answer of held.splice(0)) answer();
    },
  };
}

describe('run --concurrency 2', () => {
  let mesh: TestMesh;
  let wp: WaypointProcess;
  const echo = backend('echo');

  /** One request on a connection of its own (a new HBONE client), so the kernel picks a worker for it. */
  const request = async (to: { ip: string; port: number }, path: string) => {
    const client = new HboneClient(await mesh.credentials(SLEEP));
    try {
      const pool = mesh.httpPool(client, wp.hbone, to, { connections: 1 });
      const res = await pool.request({ method: 'GET', path });
      const body = await res.body.text();
      await pool.close();
      return { status: res.statusCode, body };
    } finally {
      client.close();
    }
  };
  const scrape = async () => (await getText(wp.metrics, '/stats/prometheus')).body;
  const perWorker = (text: string) =>
    [0, 1].map((w) => metricValue(text, 'waypoint_worker_requests', { worker: String(w) }));

  beforeAll(async () => {
    mesh = await TestMesh.create();
    await mesh.writeConfig('mesh.yaml', services(false));
    await mesh.pod('127.23.2.11', 9080, echo.server, id('shop', 'echo'));
    await mesh.pod('127.23.2.21', 9080, backend('limited').server, id('shop', 'limited'));
    await mesh.pod('127.23.2.31', 9080, backend('added').server, id('shop', 'added'));
    wp = await mesh.spawnRun({
      hboneIp: '127.23.0.2',
      args: ['--concurrency', '2', '--drain-deadline', '5', '--access-log', 'all'],
    });
  }, 60_000);
  afterAll(() => mesh?.close());

  it('is ready once both workers are, and both serve the one HBONE port; 15020 sums them', async () => {
    expect(await getText(wp.ready, '/healthz/ready')).toEqual({ status: 200, body: 'ready\n' });
    let sent = 0;
    for (; sent < 64 && perWorker(await scrape()).some((n) => n === 0); sent++)
      expect(await request(ECHO, `/r/${sent}`)).toEqual({ status: 200, body: `echo /r/${sent}` });
    const text = await scrape();
    expect(perWorker(text).every((n) => n > 0)).toBe(true);
    expect(perWorker(text).reduce((a, b) => a + b)).toBe(sent);
    expect(metricValue(text, 'istio_requests_total', { destination_service_name: 'echo' })).toBe(sent);
    expect(metricValue(text, 'waypoint_workers')).toBe(2);
    expect(text).toMatch(/^waypoint_draining 0$/m);
    // Both workers' access logs arrive as one stream of whole lines.
    const lines = await eventually(() => {
      const l = wp
        .stdout()
        .split('\n')
        .filter((x) => x.includes('"GET /r/'));
      return l.length === sent && l;
    }, 'an access log line per request');
    for (const line of lines) expect(line).toMatch(/^\[\d{4}-[^\n]*"GET \/r\/\d+ HTTP\/1\.1" 200 [^\n]*$/);
  });

  it('a local rate limit of K admits K across both workers, not K per worker', async () => {
    const before = perWorker(await scrape());
    const statuses: number[] = [];
    for (let i = 0; i < 4 * LIMIT; i++) statuses.push((await request(LIMITED, `/l/${i}`)).status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(LIMIT);
    expect(statuses.filter((s) => s === 429)).toHaveLength(3 * LIMIT);
    // Both workers counted some of them: the limit held across processes.
    const after = perWorker(await scrape());
    expect(after.every((n, w) => n > before[w]!)).toBe(true);
  });

  it('a config edit is applied by both workers', async () => {
    const applied = metricValue(await scrape(), 'waypoint_config_reloads_total', { result: 'applied' });
    await mesh.writeConfig('mesh.yaml', services(true));
    await eventually(
      async () =>
        metricValue(await scrape(), 'waypoint_config_reloads_total', { result: 'applied' }) >= applied + 2,
      'both workers applying the edit',
      15_000,
    );
    const before = perWorker(await scrape());
    for (let i = 0; i < 64 && perWorker(await scrape()).some((n, w) => n === before[w]); i++)
      expect(await request(ADDED, `/a/${i}`)).toEqual({ status: 200, body: `added /a/${i}` });
    expect(perWorker(await scrape()).every((n, w) => n > before[w]!)).toBe(true);
  });

  it('restarts a worker that dies, and is ready again', async () => {
    const pids = JSON.parse(
      await wp.waitForStderr(/\{[^\n]*"msg":"waypoint listening"[^\n]*"workers"[^\n]*\}/),
    ).pids as number[];
    process.kill(pids[1]!, 'SIGKILL');
    const line = await wp.waitForStderr(/\{[^\n]*"msg":"worker restarted"[^\n]*\}/, 15_000);
    expect(JSON.parse(line)).toMatchObject({ worker: 1 });
    expect(JSON.parse(line).pid).not.toBe(pids[1]);
    expect(wp.stderr()).toMatch(/"msg":"worker exited unexpectedly; restarting"[^\n]*"signal":"SIGKILL"/);
    await eventually(
      async () => (await getText(wp.ready, '/healthz/ready')).status === 200,
      'ready again',
      15_000,
    );
    const text = await scrape();
    // Once seen under a loaded full suite: 3 (the restarted worker failed to start twice); the log says why.
    expect(metricValue(text, 'waypoint_worker_restarts_total', { worker: '1' }), wp.stderr()).toBe(1);
    expect(metricValue(text, 'waypoint_workers')).toBe(2);
  });

  it('SIGTERM drains both workers: requests in flight complete, readiness fails, exit 0', async () => {
    const inFlight: Array<Promise<{ status: number; body: string }>> = [];
    for (let i = 0; i < 16; i++) inFlight.push(request(ECHO, `/hold/${i}`));
    await eventually(() => echo.held.length === 16, 'every request in the backend', 10_000);
    wp.child.kill('SIGTERM');
    await eventually(
      async () => (await getText(wp.ready, '/healthz/ready')).status === 503,
      'readiness failing',
    );
    expect(await getText(wp.ready, '/healthz/ready')).toEqual({ status: 503, body: 'not ready: draining\n' });
    echo.release();
    const results = await Promise.all(inFlight);
    expect(results).toEqual(results.map((_, i) => ({ status: 200, body: `echo /hold/${i}` })));
    expect(await wp.exited).toBe(0);
    expect(wp.stderr().match(/"msg":"drain: all requests finished"/g)).toHaveLength(2);
    expect(wp.stderr()).toMatch(/"msg":"every worker drained"/);
  });
});
