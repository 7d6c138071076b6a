// The admin listener, Envoy style, on a real waypoint: /config_dump with every section rendered and
// where it came from, /clusters with health, ejection and counts, /stats, /server_info, /logging at
// runtime, /certs, /ready; and the readiness and metrics listeners answering nothing else.
// Addresses: waypoint 127.0.199.2; VIPs 127.0.199.10-12; pods 127.0.199.20-22.
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observe/logger.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { curl, eventually, getText, id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const OK = { ip: '127.0.199.10', port: 8080 };
const FLAKY = { ip: '127.0.199.11', port: 8080 };
const ALLOWED = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: only-sleep, namespace: shop }
spec:
  targetRefs: [{ kind: Service, group: "", name: ok }]
  action: ALLOW
  rules: [{ from: [{ source: { principals: ["cluster.local/ns/shop/sa/sleep"] } }] }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: flaky, namespace: shop }
spec:
  host: flaky.shop.svc.cluster.local
  trafficPolicy:
    outlierDetection: { consecutive5xxErrors: 1, interval: 10s, baseEjectionTime: 60s, maxEjectionPercent: 100 }
`;

let mesh: TestMesh;
let waypoint: Waypoint;
const logLines: string[] = [];

const admin = (path: string) => getText(waypoint.addresses!.admin, path);
const adminPost = (path: string) => curl(waypoint.addresses!.admin, path, { method: 'POST', body: '' });

async function request(vip: { ip: string; port: number }, path: string): Promise<number> {
  const client = await mesh.hboneClient(id('shop', 'sleep'));
  const res = await mesh.httpPool(client, waypoint.addresses!.hbone, vip).request({ method: 'GET', path });
  await res.body.text();
  return res.statusCode;
}

beforeAll(async () => {
  mesh = await TestMesh.create();
  await mesh.writeConfig(
    'mesh.yaml',
    [
      waypointYaml(),
      serviceYaml({ name: 'ok', vip: OK.ip, port: 8080, pods: [{ name: 'ok-0', ip: '127.0.199.20' }] }),
      serviceYaml({
        name: 'flaky',
        vip: FLAKY.ip,
        port: 8080,
        pods: [
          { name: 'flaky-0', ip: '127.0.199.21' },
          { name: 'flaky-1', ip: '127.0.199.22', ready: false },
        ],
      }),
      ALLOWED,
    ].join('---\n'),
  );
  await mesh.pod('127.0.199.20', 8080, TestMesh.echoServer('ok-0'), id('shop', 'ok'));
  const failing = http.createServer((_req, res) => {
    res.writeHead(503);
    res.end('down');
  });
  await mesh.pod('127.0.199.21', 8080, failing, id('shop', 'flaky'));
  waypoint = await mesh.startWaypoint({
    ip: '127.0.199.2',
    log: createLogger('info', (l) => logLines.push(l)),
  });
  for (let i = 0; i < 2; i++) expect(await request(OK, '/')).toBe(200);
  expect(await request(FLAKY, '/')).toBe(503);
});
afterAll(() => mesh?.close());

describe('admin listener', () => {
  it('/config_dump renders every section (Maps included) and says where the configuration came from', async () => {
    const dump = JSON.parse((await admin('/config_dump')).body) as {
      configSource: {
        type: string;
        paths: string[];
        resources: Array<{ kind: string; namespace: string; name: string; origin: string }>;
      };
      services: Record<string, unknown>;
      pods: Record<string, { name: string; workload: string }>;
      filters: Record<string, unknown>;
    };
    expect(dump.configSource).toMatchObject({ type: 'files', paths: [mesh.configDir] });
    // Each resource in force, with the file and document it came from.
    expect(dump.configSource.resources).toContainEqual({
      kind: 'AuthorizationPolicy',
      namespace: 'shop',
      name: 'only-sleep',
      origin: expect.stringMatching(/mesh\.yaml#\d+$/),
    });
    expect(Object.keys(dump.services).sort()).toEqual(['127.0.199.10:8080', '127.0.199.11:8080']);
    expect(dump.pods['127.0.199.20']).toMatchObject({ name: 'ok-0', workload: 'ok-0' });
    // The authorization and routing sections are compiled into Maps: rendered, not {}.
    const authz = JSON.stringify(dump.filters.authz);
    expect(authz).toContain('only-sleep');
    expect(JSON.stringify(dump.filters.routing)).toContain('flaky.shop.svc.cluster.local');
    for (const [name, section] of Object.entries(dump.filters))
      expect(JSON.stringify(section), `filters.${name}`).not.toBe('{}');
  });

  it('/clusters lists each endpoint with health flags, outlier ejection, active and total requests', async () => {
    const text = (await admin('/clusters')).body;
    const ok = 'inbound-vip|8080|http|ok.shop.svc.cluster.local::127.0.199.20:8080::';
    expect(text).toContain(`${ok}rq_total::2\n`);
    expect(text).toContain(`${ok}rq_error::0\n`);
    expect(text).toContain(`${ok}rq_active::0\n`);
    expect(text).toContain(`${ok}health_flags::healthy\n`);
    expect(text).toContain(`${ok}hostname::shop/ok-0\n`);
    const flaky = 'inbound-vip|8080|http|flaky.shop.svc.cluster.local::';
    expect(text).toContain(`${flaky}127.0.199.21:8080::health_flags::/failed_outlier_check\n`);
    expect(text).toContain(`${flaky}127.0.199.21:8080::rq_error::1\n`);
    expect(text).toContain(`${flaky}127.0.199.22:8080::health_flags::/failed_eds_health\n`);
    const json = JSON.parse((await admin('/clusters?format=json')).body) as {
      cluster_statuses: Array<{ name: string; hosts: Array<{ address: string; rq_total: number }> }>;
    };
    expect(json.cluster_statuses.map((c) => c.name)).toContain(
      'inbound-vip|8080|http|ok.shop.svc.cluster.local',
    );
  });

  it('/stats lists every series as name{labels}: value, with a filter', async () => {
    const all = (await admin('/stats')).body;
    expect(all).toMatch(/^istio_requests_total\{[^}]*destination_service_name="ok"[^}]*\}: 2$/m);
    const filtered = (await admin('/stats?filter=^waypoint_config_reloads')).body.trim().split('\n');
    expect(filtered.length).toBeGreaterThan(0);
    expect(filtered.every((l) => l.startsWith('waypoint_config_reloads_total'))).toBe(true);
    expect((await admin('/stats?filter=(')).status).toBe(400);
    expect((await admin('/stats/prometheus')).body).toContain('# TYPE istio_requests_total counter');
  });

  it('/server_info, /ready and /certs describe the process, its state and its identity', async () => {
    const info = JSON.parse((await admin('/server_info')).body) as {
      state: string;
      node: { id: string };
      command_line_options: { gateway: string };
    };
    expect(info.state).toBe('LIVE');
    expect(info.node.id).toBe('waypoint~127.0.199.2~waypoint.shop~shop.svc.cluster.local');
    expect(info.command_line_options.gateway).toBe('shop/waypoint');
    expect(await admin('/ready')).toEqual({ status: 200, body: 'LIVE\n' });
    const certs = JSON.parse((await admin('/certs')).body) as {
      identity: string;
      certificates: Array<{
        cert_chain: Array<{ subject_alt_names: Array<{ uri?: string }>; days_until_expiration: string }>;
        ca_cert: unknown[];
      }>;
    };
    expect(certs.identity).toBe(id('shop', 'waypoint'));
    const leaf = certs.certificates[0]!.cert_chain[0]!;
    expect(leaf.subject_alt_names).toContainEqual({ uri: id('shop', 'waypoint') });
    expect(Number(leaf.days_until_expiration)).toBeGreaterThan(0);
    expect(certs.certificates[0]!.ca_cert).toHaveLength(1);
  });

  it('/logging changes the log level at runtime', async () => {
    expect((await admin('/logging')).body).toBe('active level: info\n');
    expect((await adminPost('/logging?level=loud')).status).toBe(400);
    expect(await adminPost('/logging?level=debug')).toMatchObject({ status: 200 });
    expect((await admin('/logging')).body).toBe('active level: debug\n');
    // The admin's own info line about the change is written at debug and suppressed at warn:
    // the level is the one the waypoint's logger (and its children) reads.
    expect(logLines.filter((l) => l.includes('admin: log level changed'))).toHaveLength(1);
    await adminPost('/logging?level=warn');
    expect(logLines.filter((l) => l.includes('admin: log level changed'))).toHaveLength(1);
    expect((await admin('/logging')).body).toBe('active level: warn\n');
    await adminPost('/logging?level=info');
  });
});

describe('readiness and metrics listeners', () => {
  it('serve their one page and nothing else', async () => {
    const ready = waypoint.addresses!.ready!;
    expect(await getText(ready, '/healthz/ready')).toEqual({ status: 200, body: 'ready\n' });
    for (const path of ['/config_dump', '/clusters', '/stats', '/certs', '/stats/prometheus'])
      expect((await getText(ready, path)).status, path).toBe(404);
    const metrics = waypoint.addresses!.metrics;
    expect((await getText(metrics, '/stats/prometheus')).status).toBe(200);
    expect((await getText(metrics, '/config_dump')).status).toBe(404);
    expect(
      await eventually(
        async () => (await curl(ready, '/debug/explain', { method: 'POST', body: '{}' })).status,
        'explain',
      ),
    ).toBe(404);
  });
});
