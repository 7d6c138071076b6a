// A denied gRPC call gets what Envoy sends a gRPC client: HTTP 200, trailers-only, grpc-status 7
// (PERMISSION_DENIED) and the deny body as grpc-message (l7-semantics.md §2.9, §5.1).
import http2 from 'node:http2';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Waypoint } from '../../src/waypoint.ts';
import { id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

let mesh: TestMesh;
let waypoint: Waypoint;

beforeAll(async () => {
  mesh = await TestMesh.create();
  await mesh.writeConfig(
    'mesh.yaml',
    [
      waypointYaml(),
      serviceYaml({
        name: 'grpc-api',
        vip: '127.0.115.1',
        port: 50051,
        portName: 'grpc',
        pods: [{ name: 'grpc-api-0', ip: '127.0.116.1' }],
      }),
      `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: no-deletes
  namespace: shop
spec:
  targetRefs:
    - { kind: Service, group: "", name: grpc-api }
  action: DENY
  rules:
    - to:
        - operation:
            paths: ["/shop.Catalog/Delete*"]
`,
    ].join('---\n'),
  );
  const server = http2.createServer();
  server.on('stream', (s) => {
    s.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    s.on('wantTrailers', () => s.sendTrailers({ 'grpc-status': '0' }));
    s.end(Buffer.from([0, 0, 0, 0, 0]));
  });
  await mesh.pod('127.0.116.1', 50051, server as never, id('shop', 'grpc-api'));
  const ip = '127.0.115.100';
  waypoint = await mesh.startWaypoint({
    ip: ip,
  });
});
afterAll(() => mesh.close());

async function call(path: string) {
  const client = await mesh.hboneClient(id('shop', 'sleep'));
  const c = mesh.h2Client(client, waypoint.addresses!.hbone, { ip: '127.0.115.1', port: 50051 });
  const res = await c.request({
    method: 'POST',
    path,
    headers: { 'content-type': 'application/grpc', te: 'trailers' },
    body: Buffer.from([0, 0, 0, 0, 0]),
  });
  const body = await res.body.arrayBuffer();
  return { status: res.statusCode, headers: res.headers, trailers: res.trailers, bodyBytes: body.byteLength };
}

it('answers a denied gRPC call trailers-only with PERMISSION_DENIED', async () => {
  const denied = await call('/shop.Catalog/DeleteItem');
  expect(denied.status).toBe(200);
  expect(denied.bodyBytes).toBe(0);
  // Trailers-only: grpc-status arrives in the one HEADERS frame.
  expect(denied.headers['grpc-status']).toBe('7');
  expect(denied.headers['grpc-message']).toBe('RBAC: access denied');
  expect(denied.headers['x-waypoint-reason']).toBe('authz_denied');
});

it('lets other methods through to the server', async () => {
  const ok = await call('/shop.Catalog/GetItem');
  expect(ok.status).toBe(200);
  expect(ok.trailers['grpc-status']).toBe('0');
});
