// `node-waypoint run` as a user runs it: a child process started from the command line (flags or
// WAYPOINT_* environment variables), HBONE in from a ztunnel-like client, readiness, /config_dump
// and /stats/prometheus on their ports, and usage errors for a bad command line.
// Addresses: waypoint 127.25.0.3 (127.0.0.13 for the env case), VIPs 127.0.51.x, pods 127.0.61.x.
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  concurrencyOf,
  curl,
  getText,
  id,
  metricValue,
  parseHostPort,
  serviceYaml,
  spawnCli,
  TestMesh,
  type WaypointProcess,
  waypointYaml,
} from '../helpers/mesh.ts';

const VIP = { ip: '127.25.51.10', port: 9080 };
/** Worker processes per `run` (WAYPOINT_CONCURRENCY): N + 1 processes load the sources on 2 cores. */
const WORKERS = concurrencyOf([], process.env);
const LISTENING = /\{[^\n]*"msg":"waypoint listening"[^\n]*\}/;
const NOT_READY_VIP = { ip: '127.25.51.20', port: 9080 };
const DETAILS_VIP = { ip: '127.25.51.30', port: 9080 };

describe('node-waypoint run', () => {
  let mesh: TestMesh;
  let wp: WaypointProcess;

  beforeAll(async () => {
    mesh = await TestMesh.create();
    await mesh.writeConfig(
      'mesh.yaml',
      [
        waypointYaml(),
        serviceYaml({
          name: 'reviews',
          vip: VIP.ip,
          port: VIP.port,
          pods: [
            { name: 'reviews-a', ip: '127.0.61.11' },
            { name: 'reviews-b', ip: '127.0.61.12' },
          ],
        }),
        serviceYaml({
          name: 'ratings',
          vip: NOT_READY_VIP.ip,
          port: NOT_READY_VIP.port,
          pods: [{ name: 'ratings-a', ip: '127.0.61.21', ready: false }],
        }),
        serviceYaml({
          name: 'details',
          vip: DETAILS_VIP.ip,
          port: DETAILS_VIP.port,
          pods: [{ name: 'details-a', ip: '127.0.61.31' }],
        }),
      ].join('---\n'),
    );
    for (const [name, ip] of [
      ['reviews-a', '127.0.61.11'],
      ['reviews-b', '127.0.61.12'],
    ] as const) {
      await mesh.pod(ip, 9080, TestMesh.echoServer(name), id('shop', 'reviews'));
    }
    await mesh.pod('127.0.61.31', 9080, TestMesh.echoServer('details-a'), id('shop', 'details'), {
      hbonePort: 15999,
    });
    wp = await mesh.spawnWaypoint([], { hboneIp: '127.25.0.3' });
  });
  afterAll(() => mesh?.close());

  it('is ready once started', async () => {
    expect(wp.hbone.ip).toBe('127.25.0.3');
    const ready = await getText(wp.admin, '/healthz/ready');
    expect(ready).toEqual({ status: 200, body: 'ready\n' });
  });

  it('carries GET and POST to a Service with two endpoints, using both', async () => {
    const client = await mesh.hboneClient(id('shop', 'productpage'));
    const pool = mesh.httpPool(client, wp.hbone, VIP, { connections: 4 });
    const pods = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const res = await pool.request({ method: 'GET', path: `/reviews/${i}` });
      expect(res.statusCode).toBe(200);
      const body = (await res.body.json()) as { pod: string; path: string; method: string };
      expect(body).toMatchObject({ method: 'GET', path: `/reviews/${i}` });
      pods.add(body.pod);
    }
    expect([...pods].sort()).toEqual(['reviews-a', 'reviews-b']);
    for (let i = 0; i < 10; i++) {
      const post = await pool.request({
        method: 'POST',
        path: '/reviews',
        body: 'x'.repeat(2048),
        headers: { 'content-type': 'text/plain' },
      });
      expect(post.statusCode).toBe(200);
      expect(await post.body.json()).toMatchObject({ method: 'POST', path: '/reviews', bytes: 2048 });
    }

    // A Service whose only pod is not ready: a 503 the metrics can show with its reason.
    const down = mesh.httpPool(client, wp.hbone, NOT_READY_VIP);
    const res = await down.request({ method: 'GET', path: '/' });
    expect(res.statusCode).toBe(503);
    expect(res.headers['x-waypoint-reason']).toBe('no_healthy_upstream');
    await res.body.text();
  });

  it('shows the bound Service and its endpoints in /config_dump', async () => {
    const res = await getText(wp.admin, '/config_dump');
    expect(res.status).toBe(200);
    const dump = JSON.parse(res.body) as {
      ready: string;
      version: number;
      gateway: { found: boolean; ref: { namespace: string; name: string } };
      services: Record<
        string,
        { service: { name: string; namespace: string }; endpoints: Array<{ ip: string; port: number }> }
      >;
    };
    expect(dump.ready).toBe('ready');
    expect(dump.version).toBeGreaterThanOrEqual(1);
    expect(dump.gateway).toMatchObject({ found: true, ref: { namespace: 'shop', name: 'waypoint' } });
    const reviews = dump.services['127.25.51.10:9080'];
    expect(reviews?.service).toMatchObject({ name: 'reviews', namespace: 'shop' });
    expect(reviews?.endpoints.map((e) => `${e.ip}:${e.port}`).sort()).toEqual([
      '127.0.61.11:9080',
      '127.0.61.12:9080',
    ]);
  });

  it('exports request, tunnel, upstream and config metrics on /stats/prometheus', async () => {
    // Keep one tunnel open while scraping, so the gauges have something to count.
    const client = await mesh.hboneClient(id('shop', 'productpage'));
    const pool = mesh.httpPool(client, wp.hbone, VIP, { connections: 1 });
    const res = await pool.request({ method: 'GET', path: '/held' });
    expect(res.statusCode).toBe(200);
    await res.body.text();

    const scrape = await getText(wp.metrics, '/stats/prometheus');
    expect(scrape.status).toBe(200);
    const m = scrape.body;
    expect(
      metricValue(m, 'istio_requests_total', {
        reporter: 'waypoint',
        destination_service_name: 'reviews',
        response_code: '200',
      }),
    ).toBeGreaterThanOrEqual(41);
    expect(
      metricValue(m, 'istio_requests_total', {
        reporter: 'waypoint',
        destination_service_name: 'ratings',
        response_code: '503',
      }),
    ).toBe(1);
    expect(metricValue(m, 'waypoint_requests_total', { reason: 'via_upstream', response_code: '200' })).toBe(
      metricValue(m, 'istio_requests_total', { response_code: '200' }),
    );
    expect(
      metricValue(m, 'waypoint_requests_total', { reason: 'no_healthy_upstream', response_code: '503' }),
    ).toBe(1);
    expect(m).toMatch(/^waypoint_hbone_tunnels_active \d+$/m);
    expect(metricValue(m, 'waypoint_hbone_tunnels_active')).toBeGreaterThanOrEqual(1);
    expect(metricValue(m, 'waypoint_hbone_sessions_active')).toBeGreaterThanOrEqual(1);
    expect(metricValue(m, 'waypoint_upstream_http1_connections_active')).toBeGreaterThanOrEqual(1);
    expect(metricValue(m, 'waypoint_upstream_hbone_sessions_active')).toBeGreaterThanOrEqual(1);
    expect(m).toMatch(/^waypoint_upstream_http2_connections_active \d+$/m);
    expect(metricValue(m, 'waypoint_config_reloads_total', { result: 'applied' })).toBeGreaterThanOrEqual(1);
    expect(m).toMatch(/^waypoint_config_resources_rejected_total 0$/m);
  });

  it('answers 404 for unknown admin paths', async () => {
    expect((await getText(wp.admin, '/nope')).status).toBe(404);
    expect((await getText(wp.metrics, '/healthz/ready')).status).toBe(404);
  });

  it('takes every flag from WAYPOINT_* environment variables', { timeout: 30_000 * WORKERS }, async () => {
    const files = await mesh.certFiles(id('shop', 'waypoint'));
    const env = {
      WAYPOINT_CONFIG: mesh.configDir,
      WAYPOINT_GATEWAY: 'shop/waypoint',
      WAYPOINT_CERT: files.cert,
      WAYPOINT_KEY: files.key,
      WAYPOINT_CA: files.ca,
      WAYPOINT_HBONE: '127.0.0.13:0',
      WAYPOINT_ADMIN: '127.0.0.13:0',
      WAYPOINT_READY: '127.0.0.13:0',
      WAYPOINT_METRICS: '127.0.0.13:0',
      // Only the details pod's stand-in listens on 15999: requests to it prove the variable is used.
      WAYPOINT_ENDPOINT_HBONE_PORT: '15999',
      WAYPOINT_CLUSTER_DOMAIN: 'example.internal',
      WAYPOINT_LOG_LEVEL: 'info',
      WAYPOINT_ACCESS_LOG: 'all',
      WAYPOINT_DRAIN_DEADLINE: '2',
    };
    const proc = spawnCli(['run'], { env, register: (fn) => mesh.onClose(fn) });
    const [line] = await proc.waitForStderr(LISTENING, 15_000 * WORKERS);
    const listening = JSON.parse(line) as { hbone: string; admin: string; metrics: string; gateway: string };
    expect(listening.gateway).toBe('shop/waypoint');
    const hbone = parseHostPort(listening.hbone);
    const admin = parseHostPort(listening.admin);
    expect(hbone.ip).toBe('127.0.0.13');
    expect(admin.ip).toBe('127.0.0.13');
    expect(parseHostPort(listening.metrics).ip).toBe('127.0.0.13');
    expect((await getText(admin, '/healthz/ready')).status).toBe(200);
    const dump = JSON.parse((await getText(admin, '/config_dump')).body) as {
      services: Record<string, { service: { hostname: string } }>;
    };
    expect(dump.services['127.25.51.30:9080']?.service.hostname).toBe('details.shop.svc.example.internal');

    const client = await mesh.hboneClient(id('shop', 'productpage'));
    const pool = mesh.httpPool(client, hbone, DETAILS_VIP);
    const res = await pool.request({ method: 'GET', path: '/from-env' });
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toMatchObject({ pod: 'details-a' });
    // WAYPOINT_ACCESS_LOG=all: the success is in the access log on stdout.
    await proc.waitForStdout(/"GET \/from-env HTTP\/1\.1" 200 /);

    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
    expect(proc.stderr()).toMatch(/"msg":"drain: readiness failing, GOAWAY sent"[^\n]*"deadline_ms":2000/);

    // WAYPOINT_LOG_LEVEL is read too: a bad value is a usage error naming the flag.
    const loud = spawnCli(['run'], { env: { ...env, WAYPOINT_LOG_LEVEL: 'loud' } });
    expect(await loud.exited).toBe(2);
    expect(loud.stderr()).toContain('--log-level: log level must be one of');
  });

  it('lets a flag win over its environment variable', { timeout: 30_000 * WORKERS }, async () => {
    const files = await mesh.certFiles(id('shop', 'waypoint'));
    const proc = spawnCli(
      [
        'run',
        '--config',
        mesh.configDir,
        '--gateway',
        'shop/waypoint',
        '--hbone',
        '127.0.0.13:0',
        '--admin',
        '127.0.0.13:0',
        '--ready',
        '127.0.0.13:0',
        '--metrics',
        '127.0.0.13:0',
      ],
      {
        env: {
          WAYPOINT_CERT: files.cert,
          WAYPOINT_KEY: files.key,
          WAYPOINT_CA: files.ca,
          WAYPOINT_GATEWAY: 'nowhere/nothing',
          WAYPOINT_HBONE: '127.0.0.23:0',
        },
        register: (fn) => mesh.onClose(fn),
      },
    );
    const [line] = await proc.waitForStderr(LISTENING, 15_000 * WORKERS);
    expect(JSON.parse(line)).toMatchObject({
      gateway: 'shop/waypoint',
      hbone: expect.stringMatching(/^127\.0\.0\.13:/),
    });
    proc.child.kill('SIGTERM');
    expect(await proc.exited, proc.stderr()).toBe(0);
  });

  it('prints a usage error and exits 2 when a required flag is missing', async () => {
    const files = await mesh.certFiles(id('shop', 'waypoint'));
    const proc = spawnCli([
      'run',
      '--config',
      mesh.configDir,
      '--cert',
      files.cert,
      '--key',
      files.key,
      '--ca',
      files.ca,
    ]);
    expect(await proc.exited).toBe(2);
    expect(proc.stderr()).toContain('--gateway is required');
    expect(proc.stderr()).toContain('Usage: node-waypoint run');
    expect(proc.stdout()).toBe('');

    const noConfig = spawnCli(['run', '--gateway', 'shop/waypoint']);
    expect(await noConfig.exited).toBe(2);
    expect(noConfig.stderr()).toContain('--config is required');
  });

  it('exits 2 on a malformed flag value or an unknown flag, saying which', async () => {
    const files = await mesh.certFiles(id('shop', 'waypoint'));
    const base = [
      'run',
      '--config',
      mesh.configDir,
      '--cert',
      files.cert,
      '--key',
      files.key,
      '--ca',
      files.ca,
    ];
    // Each malformed value is checked in this process (src/cli/run.test.ts); here, that the process
    // exits 2 with the message, for a bad value and for an unknown flag.
    const cases: Array<[string[], RegExp]> = [
      [[...base, '--gateway', 'shop/waypoint', '--hbone', 'localhost'], /--hbone: expected IP:PORT/],
      [[...base, '--gateway', 'shop/waypoint', '--gatway', 'x'], /--gatway/],
    ];
    const procs = cases.map(([args]) => spawnCli(args));
    for (const [i, p] of procs.entries()) {
      expect(await p.exited, p.stderr()).toBe(2);
      expect(p.stderr()).toMatch(cases[i]![1]);
    }
  });

  it('exits 1 with the file named when the certificate cannot be read', async () => {
    const files = await mesh.certFiles(id('shop', 'waypoint'));
    const proc = spawnCli([
      'run',
      '--config',
      mesh.configDir,
      '--gateway',
      'shop/waypoint',
      '--cert',
      `${mesh.dir}/missing.pem`,
      '--key',
      files.key,
      '--ca',
      mesh.rootCertFile,
    ]);
    expect(await proc.exited).toBe(1);
    expect(proc.stderr()).toContain(`cannot read the certificate ${mesh.dir}/missing.pem: ENOENT`);
  });

  it('exits 1 naming the address when a port is taken, instead of hanging', async () => {
    const files = await mesh.certFiles(id('shop', 'waypoint'));
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.25.0.3', () => r()));
    mesh.onClose(() => new Promise<void>((r) => taken.close(() => r())));
    const port = (taken.address() as AddressInfo).port;
    const proc = spawnCli(
      [
        'run',
        '--config',
        mesh.configDir,
        '--gateway',
        'shop/waypoint',
        '--cert',
        files.cert,
        '--key',
        files.key,
        '--ca',
        files.ca,
        '--hbone',
        '127.25.0.3:0',
        '--admin',
        `127.25.0.3:${port}`,
        '--ready',
        '127.25.0.3:0',
        '--metrics',
        '127.25.0.3:0',
      ],
      { register: (fn) => mesh.onClose(fn) },
    );
    expect(await proc.exited).toBe(1);
    expect(proc.stderr()).toContain(`cannot listen for admin on 127.25.0.3:${port}: EADDRINUSE`);
  });

  it('stops on SIGTERM with exit code 0', async () => {
    wp.child.kill('SIGTERM');
    expect(await wp.exited).toBe(0);
    await expect(curl(wp.admin, '/healthz/ready', { timeoutMs: 1000 })).rejects.toThrow();
  });
});
