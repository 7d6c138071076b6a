// Node's Http2Stream _writev corrupted the status line when the HTTP/1 server corked it with the
// first body chunk (src/hbone/writev-fix.ts). The bench found it: content-length responses written
// after the request body was read arrived as garbage.
import http from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Waypoint } from '../../src/waypoint.ts';
import { id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

let mesh: TestMesh;
let waypoint: Waypoint;
const body = Buffer.alloc(1024, 0x72);

beforeAll(async () => {
  mesh = await TestMesh.create();
  await mesh.writeConfig(
    'mesh.yaml',
    [
      waypointYaml(),
      serviceYaml({
        name: 'files',
        vip: '127.0.70.1',
        port: 8080,
        pods: [{ name: 'files-a', ip: '127.0.71.1' }],
      }),
    ].join('---\n'),
  );
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-length': body.length });
      res.write(body);
      res.end();
    });
  });
  await mesh.pod('127.0.71.1', 8080, server, id('shop', 'files'));
  waypoint = await mesh.startWaypoint({
    hbone: { host: '127.0.70.2', port: 0 },
    admin: { host: '127.0.70.2', port: 0 },
    metrics: { host: '127.0.70.2', port: 0 },
  });
});
afterAll(() => mesh.close());

it('delivers content-length responses intact through both tunnels', async () => {
  const client = await mesh.hboneClient(id('shop', 'sleep'));
  const pool = mesh.httpPool(
    client,
    waypoint.addresses!.hbone,
    { ip: '127.0.70.1', port: 8080 },
    { connections: 2 },
  );
  for (let i = 0; i < 50; i++) {
    const res = await pool.request({ method: 'POST', path: '/', body: 'ping' });
    expect(res.statusCode).toBe(200);
    expect(Buffer.from(await res.body.arrayBuffer()).equals(body)).toBe(true);
  }
});
