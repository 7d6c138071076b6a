// `run` with a mesh config that says `accessLogEncoding: JSON`: the access log on stdout is one JSON
// object a line with Istio's keys (and the waypoint's reason), for HTTP requests and TCP connections.
// Addresses: waypoint 127.0.198.3; VIPs 127.0.198.60-61; pods 127.0.198.70-71.
import net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  eventually,
  id,
  serviceYaml,
  TestMesh,
  type WaypointProcess,
  waypointYaml,
} from '../helpers/mesh.ts';

let mesh: TestMesh;
let wp: WaypointProcess;

beforeAll(async () => {
  mesh = await TestMesh.create();
  await mesh.writeConfig(
    'mesh.yaml',
    [
      waypointYaml(),
      serviceYaml({
        name: 'web',
        vip: '127.0.198.60',
        port: 8080,
        pods: [{ name: 'web-0', ip: '127.0.198.70' }],
      }),
      serviceYaml({
        name: 'raw',
        vip: '127.0.198.61',
        port: 7000,
        portName: 'tcp',
        pods: [{ name: 'raw-0', ip: '127.0.198.71' }],
      }),
    ].join('---\n'),
  );
  await mesh.pod('127.0.198.70', 8080, TestMesh.echoServer('web-0'), id('shop', 'web'));
  await mesh.pod(
    '127.0.198.71',
    7000,
    net.createServer((s) => s.pipe(s)),
    id('shop', 'raw'),
  );
  const meshConfig = await mesh.writeConfig(
    '../mesh-config.yaml',
    'kind: ConfigMap\ndata:\n  mesh: |\n    accessLogEncoding: JSON\n',
  );
  wp = await mesh.spawnWaypoint(['--mesh-config', meshConfig, '--access-log', 'all'], {
    hboneIp: '127.0.198.3',
  });
});
afterAll(() => mesh?.close());

const lines = (): Array<Record<string, unknown>> =>
  wp
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

it('writes JSON lines with Istio keys for an HTTP request and a TCP connection', async () => {
  const client = await mesh.hboneClient(id('shop', 'sleep'));
  const res = await mesh.httpPool(client, wp.hbone, { ip: '127.0.198.60', port: 8080 }).request({
    method: 'GET',
    path: '/json-please',
  });
  await res.body.text();
  expect(await TestMesh.ping(client, wp.hbone, { ip: '127.0.198.61', port: 7000 })).toBe('ping');
  const http = await eventually(() => lines().find((l) => l.path === '/json-please'), 'the request line');
  expect(http).toMatchObject({
    method: 'GET',
    protocol: 'HTTP/1.1',
    response_code: 200,
    response_flags: '-',
    response_code_details: 'via_upstream',
    upstream_host: '127.0.198.70:8080',
    upstream_cluster: 'inbound-vip|8080|http|web.shop.svc.cluster.local',
    route_name: 'default',
    waypoint_reason: 'via_upstream',
  });
  const tcp = await eventually(() => lines().find((l) => l.method === '-'), 'the TCP line');
  expect(tcp).toMatchObject({
    path: '-',
    protocol: '-',
    response_code: 0,
    response_code_details: null,
    bytes_received: 4,
    bytes_sent: 4,
    upstream_host: '127.0.198.71:7000',
    upstream_cluster: 'inbound-vip|7000|tcp|raw.shop.svc.cluster.local',
  });
  // Nothing but JSON on stdout.
  expect(
    wp
      .stdout()
      .trim()
      .split('\n')
      .every((l) => l.startsWith('{')),
  ).toBe(true);
});
