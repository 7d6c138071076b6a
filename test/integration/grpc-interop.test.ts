// Real gRPC stacks on both ends of the waypoint, through the ztunnel stand-ins: gRPC C-core
// (Debian's python3-grpcio, as client and as server) and @grpc/grpc-js, in every pairing. Unlike
// grpc.test.ts, these servers answer the way gRPC servers usually do: errors trailers-only (one
// HEADERS frame with END_STREAM), OK replies with no metadata sent before the message.
// Addresses: waypoint 127.0.236.2, VIPs 127.0.236.1x, pods 127.0.237.x, clients 127.0.238.x.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostPort } from '../../src/hbone/authority.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { grpcJsCalls, startGrpcJsServer } from '../helpers/grpc-js-peer.ts';
import { type GrpcioResult, grpcioCalls, grpcioMissing, startGrpcioServer } from '../helpers/grpcio.ts';
import { id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const WAYPOINT_IP = '127.0.236.2';
const PY_VIP = { ip: '127.0.236.10', port: 50051 };
const JS_VIP = { ip: '127.0.236.11', port: 50051 };
const GONE_VIP = { ip: '127.0.236.12', port: 50051 };
const NARROW_VIP = { ip: '127.0.236.13', port: 50051 };
const NARROW_POD = '127.0.237.13';
const PY_POD = '127.0.237.10';
const JS_POD = '127.0.237.11';

const missing = grpcioMissing();
if (missing) console.warn(`grpc-interop: grpcio tests skipped: ${missing}`);

type Caller = (
  target: HostPort,
  requests: readonly string[],
  timeoutSeconds?: number,
) => Promise<GrpcioResult[]>;
const CLIENTS: Record<string, Caller> = { grpcio: grpcioCalls, 'grpc-js': grpcJsCalls };

describe('gRPC interop through the waypoint (grpcio and grpc-js)', () => {
  let mesh: TestMesh;
  let waypoint: Waypoint;
  // client stack → server stack → the outbound stand-in's address for that pairing
  const targets = new Map<string, HostPort>();

  beforeAll(async () => {
    mesh = await TestMesh.create();
    const pod = (name: string, ip: string) => [{ name, ip }];
    await mesh.writeConfig(
      'mesh.yaml',
      [
        waypointYaml(),
        serviceYaml({
          name: 'pyecho',
          vip: PY_VIP.ip,
          port: PY_VIP.port,
          portName: 'grpc',
          pods: pod('py-a', PY_POD),
        }),
        serviceYaml({
          name: 'jsecho',
          vip: JS_VIP.ip,
          port: JS_VIP.port,
          portName: 'grpc',
          pods: pod('js-a', JS_POD),
        }),
        serviceYaml({
          name: 'gone',
          vip: GONE_VIP.ip,
          port: GONE_VIP.port,
          portName: 'grpc',
          pods: [{ name: 'gone-a', ip: '127.0.237.12', ready: false }],
        }),
        serviceYaml({
          name: 'narrow',
          vip: NARROW_VIP.ip,
          port: NARROW_VIP.port,
          portName: 'grpc',
          pods: pod('narrow-a', NARROW_POD),
        }),
      ].join('---\n'),
    );
    if (!missing) {
      const py = await startGrpcioServer(PY_POD, PY_VIP.port);
      mesh.onClose(py.stop);
    }
    const js = await startGrpcJsServer(JS_POD, JS_VIP.port);
    mesh.onClose(() => js.forceShutdown());
    // A server that takes 10 streams at a time per connection (SETTINGS_MAX_CONCURRENT_STREAMS).
    const narrow = await startGrpcJsServer(NARROW_POD, NARROW_VIP.port, undefined, {
      'grpc.max_concurrent_streams': 10,
    });
    mesh.onClose(() => narrow.forceShutdown());
    await mesh.standIn(NARROW_POD, id('shop', 'narrow'));
    await mesh.standIn(PY_POD, id('shop', 'pyecho'));
    await mesh.standIn(JS_POD, id('shop', 'jsecho'));
    waypoint = await mesh.startWaypoint({ ip: WAYPOINT_IP });
    let n = 10;
    for (const [server, vip] of [
      ['grpcio', PY_VIP],
      ['grpc-js', JS_VIP],
      ['gone', GONE_VIP],
      ['narrow', NARROW_VIP],
    ] as const) {
      const local = await mesh.outbound({
        listen: { ip: `127.0.238.${n++}`, port: 0 },
        waypoint: waypoint.addresses!.hbone,
        destination: vip,
        identity: id('shop', 'frontend'),
      });
      targets.set(server, local);
    }
  });
  afterAll(() => mesh?.close());

  const pairings = [
    ['grpcio', 'grpcio'],
    ['grpcio', 'grpc-js'],
    ['grpc-js', 'grpcio'],
    ['grpc-js', 'grpc-js'],
  ] as const;

  for (const [client, server] of pairings) {
    const needsGrpcio = client === 'grpcio' || server === 'grpcio';
    const suffix = needsGrpcio && missing ? ` (skipped: ${missing})` : '';
    const call = (requests: readonly string[], timeout = 10) =>
      CLIENTS[client]!(targets.get(server)!, requests, timeout);

    it.skipIf(needsGrpcio && missing)(
      `${client} → ${server}: OK with trailers, no metadata first${suffix}`,
      async () => {
        const [r] = await call(['ok:hello']);
        expect(r).toMatchObject({ code: 'OK', reply: 'hello', trailing: { 'x-trailer': 'done' } });
      },
    );

    it.skipIf(needsGrpcio && missing)(
      `${client} → ${server}: initial metadata, then trailers${suffix}`,
      async () => {
        const [r] = await call(['meta:hi']);
        expect(r).toMatchObject({
          code: 'OK',
          reply: 'hi',
          initial: { 'x-pod': server },
          trailing: { 'x-trailer': 'done' },
        });
      },
    );

    it.skipIf(needsGrpcio && missing)(
      `${client} → ${server}: an error sent trailers-only${suffix}`,
      async () => {
        // A short deadline: the bug this guards against made the call hang until it.
        const results = await call(['fail:5', 'fail:7', 'fail:14'], 5);
        expect(results.map((r) => [r.code, r.details])).toEqual([
          ['NOT_FOUND', 'failing as asked: fail:5'],
          ['PERMISSION_DENIED', 'failing as asked: fail:7'],
          ['UNAVAILABLE', 'failing as asked: fail:14'],
        ]);
      },
    );

    it.skipIf(needsGrpcio && missing)(
      `${client} → ${server}: 200 concurrent calls on one channel${suffix}`,
      async () => {
        const requests = Array.from({ length: 200 }, (_, i) =>
          i % 10 === 9 ? `fail:${(i % 16) + 1}` : `slow:20:c${i}`,
        );
        const results = await call(requests, 20);
        results.forEach((r, i) => {
          if (i % 10 === 9) expect(r.details).toBe(`failing as asked: fail:${(i % 16) + 1}`);
          else expect(r).toMatchObject({ code: 'OK', reply: `c${i}`, trailing: { 'x-trailer': 'done' } });
        });
      },
    );
  }

  for (const client of ['grpcio', 'grpc-js'] as const) {
    const suffix = client === 'grpcio' && missing ? ` (skipped: ${missing})` : '';
    it.skipIf(client === 'grpcio' && missing)(
      `${client}: a local reply is a trailers-only UNAVAILABLE${suffix}`,
      async () => {
        const [r] = await CLIENTS[client]!(targets.get('gone')!, ['ok:anyone?'], 5);
        expect(r).toMatchObject({
          code: 'UNAVAILABLE',
          details: 'no healthy upstream',
          trailing: { 'x-waypoint-reason': 'no_healthy_upstream' },
        });
      },
    );
  }

  it('200 concurrent calls reach a server that takes 10 streams at a time', async () => {
    const requests = Array.from({ length: 200 }, (_, i) => `slow:20:n${i}`);
    const results = await grpcJsCalls(targets.get('narrow')!, requests, 20);

    for (const [i, r] of results.entries()) expect(r).toMatchObject({ code: 'OK', reply: `n${i}` });
  });
});
