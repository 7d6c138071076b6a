// SIGTERM on `node-waypoint run` with gRPC calls in flight (grpc-js and grpcio clients, a grpc-js
// server): the drain waits for them, each gets its real status (OK with trailers, or an error sent
// trailers-only), and the process exits 0 well before the drain deadline.
// Addresses: waypoints 127.0.236.4 and .5, VIPs 127.0.236.4x, pods 127.0.237.4x, clients 127.0.238.4x.
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostPort } from '../../src/hbone/authority.ts';
import { grpcJsCalls, type HoldGate, startGrpcJsServer, UNARY_PATH } from '../helpers/grpc-js-peer.ts';
import { grpcioCalls, grpcioMissing } from '../helpers/grpcio.ts';
import { eventually, id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const VIP = { ip: '127.0.236.40', port: 50051 };
const POD = '127.0.237.40';
const SILENT_VIP = { ip: '127.0.236.41', port: 50051 };
const SILENT_POD = '127.0.237.41';
const noGrpcio = grpcioMissing();
if (noGrpcio) console.warn(`grpc-drain: the grpcio client is left out: ${noGrpcio}`);

describe('drain with gRPC calls in flight', () => {
  let mesh: TestMesh;
  const gate: HoldGate = { held: [] };

  beforeAll(async () => {
    mesh = await TestMesh.create();
    await mesh.writeConfig(
      'mesh.yaml',
      [
        waypointYaml(),
        serviceYaml({
          name: 'held',
          vip: VIP.ip,
          port: VIP.port,
          portName: 'grpc',
          pods: [{ name: 'held-a', ip: POD }],
        }),
        serviceYaml({
          name: 'silent',
          vip: SILENT_VIP.ip,
          port: SILENT_VIP.port,
          portName: 'grpc',
          pods: [{ name: 'silent-a', ip: SILENT_POD }],
        }),
      ].join('---\n'),
    );
    const server = await startGrpcJsServer(POD, VIP.port, gate);
    mesh.onClose(() => server.forceShutdown());
    await mesh.standIn(POD, id('shop', 'held'));
  });
  afterAll(() => mesh?.close());

  it('finishes OK and trailers-only calls under way at SIGTERM, then exits 0', async () => {
    const wp = await mesh.spawnRun({ hboneIp: '127.0.236.4', args: ['--drain-deadline', '10'] });
    const client = (n: number): Promise<HostPort> =>
      mesh.outbound({
        listen: { ip: `127.0.238.${n}`, port: 0 },
        waypoint: wp.hbone,
        destination: VIP,
        identity: id('shop', 'frontend'),
      });
    const requests = Array.from({ length: 20 }, (_, i) =>
      i % 2 ? `hold:fail:${(i % 15) + 1}` : `hold:ok:r${i}`,
    );
    const calls = [grpcJsCalls(await client(40), requests, 15)];
    if (!noGrpcio) calls.push(grpcioCalls(await client(41), requests, 15));
    await eventually(
      () => gate.held.length === requests.length * calls.length,
      'every call held by the server',
    );

    wp.child.kill('SIGTERM');
    await wp.waitForStderr(/drain: readiness failing, GOAWAY sent/);
    for (const release of gate.held.splice(0)) release();

    for (const results of await Promise.all(calls)) {
      for (const [i, r] of results.entries()) {
        if (i % 2)
          expect([r.code, r.details]).toEqual([expect.any(String), `failing as asked: fail:${(i % 15) + 1}`]);
        else expect(r).toMatchObject({ code: 'OK', reply: `r${i}`, trailing: { 'x-trailer': 'done' } });
      }
    }
    expect(await wp.exited).toBe(0);
    expect(wp.stderr()).toContain('drain: all requests finished');
    expect(wp.stderr()).not.toContain('deadline passed');
  });

  it("lets go of a call cancelled while its upstream session waits for the server's SETTINGS", async () => {
    // A "gRPC server" that accepts the connection and never says a word.
    const accepted: net.Socket[] = [];
    const silent = net.createServer((socket) => accepted.push(socket));
    await mesh.pod(SILENT_POD, SILENT_VIP.port, silent, id('shop', 'silent'));
    mesh.onClose(() => {
      for (const s of accepted) s.destroy();
    });
    const waypoint = await mesh.startWaypoint({ ip: '127.0.236.5' });
    const local = await mesh.outbound({
      listen: { ip: '127.0.238.42', port: 0 },
      waypoint: waypoint.addresses!.hbone,
      destination: SILENT_VIP,
      identity: id('shop', 'frontend'),
    });
    const client = new grpc.Client(`${local.ip}:${local.port}`, grpc.credentials.createInsecure(), {
      'grpc.enable_http_proxy': 0,
    });
    mesh.onClose(() => client.close());
    const raw = (b: Buffer): Buffer => b;
    const status = new Promise<grpc.StatusObject>((resolve) => {
      const call = client.makeUnaryRequest(UNARY_PATH, raw, raw, Buffer.from('ok:x'), () => {});
      call.on('status', resolve);
      void eventually(() => accepted.length > 0, 'the tunnel to the silent server').then(() => call.cancel());
    });
    const s = await status;
    expect([s.code, s.details]).toEqual([grpc.status.CANCELLED, expect.any(String)]);
    // The waypoint is idle again: its drain finishes at once instead of running into the deadline.
    expect(await waypoint.shutdown()).toMatchObject({ drained: true, abandoned: 0 });
  });
});
