// A filter drops into the waypoint without engine changes: its compiler runs on each snapshot, its
// filter reads the compiled config, and its local reply carries the reason everywhere.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CONTINUE, type FilterFactory } from '../../src/pipeline/filter.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { getText, id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const denyByHeader: FilterFactory = {
  name: 'deny-by-header',
  compile: (resources) => ({
    config: { header: 'x-deny', services: resources.filter((r) => r.kind === 'Service').length },
    messages: [],
  }),
  create(snapshot) {
    const config = snapshot.filters['deny-by-header'] as { header: string } | undefined;
    if (!config) return undefined;
    return {
      name: 'deny-by-header',
      onRequestHeaders: (ctx) =>
        ctx.headers[config.header]
          ? { kind: 'reply', reason: 'authz_denied', detail: 'test filter' }
          : CONTINUE,
    };
  },
};

let mesh: TestMesh;
let waypoint: Waypoint;

beforeAll(async () => {
  mesh = await TestMesh.create();
  await mesh.writeConfig(
    'mesh.yaml',
    [
      waypointYaml(),
      serviceYaml({
        name: 'api',
        vip: '127.0.72.1',
        port: 8080,
        pods: [{ name: 'api-a', ip: '127.0.73.1' }],
      }),
    ].join('---\n'),
  );
  await mesh.pod('127.0.73.1', 8080, TestMesh.echoServer('api-a'), id('shop', 'api'));
  const ip = '127.0.72.2';
  waypoint = await mesh.startWaypoint({
    factories: [denyByHeader],
    ip: ip,
    defaultMetrics: false,
  });
});
afterAll(() => mesh.close());

it('runs a registered filter with its compiled config, answering with the reason', async () => {
  expect(waypoint.snapshot?.filters['deny-by-header']).toEqual({ header: 'x-deny', services: 1 });
  const client = await mesh.hboneClient(id('shop', 'sleep'));
  const pool = mesh.httpPool(client, waypoint.addresses!.hbone, { ip: '127.0.72.1', port: 8080 });
  const ok = await pool.request({ method: 'GET', path: '/' });
  expect(ok.statusCode).toBe(200);
  await ok.body.text();
  const denied = await pool.request({ method: 'DELETE', path: '/', headers: { 'x-deny': '1' } });
  expect(denied.statusCode).toBe(403);
  expect(denied.headers['x-waypoint-reason']).toBe('authz_denied');
  expect(await denied.body.text()).toBe('RBAC: access denied');
  const metrics = await getText(waypoint.addresses!.metrics, '/stats/prometheus');
  expect(metrics.body).toMatch(
    /waypoint_requests_total\{reason="authz_denied",response_code="403",response_flags="-",route=""\} 1/,
  );
});
