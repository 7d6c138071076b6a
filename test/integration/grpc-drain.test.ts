// SIGTERM on `node-waypoint run` with gRPC calls in flight (grpc-js and grpcio clients, a grpc-js
// server): the drain waits for them, each gets its real status (OK with trailers, or an error sent
// trailers-only), and the process exits 0 well before the drain deadline.
// Addresses: waypoint 127.0.236.4, VIP 127.0.236.40, pod 127.0.237.40, clients 127.0.238.4x.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostPort } from '../../src/hbone/authority.ts';
import { grpcJsCalls, type HoldGate, startGrpcJsServer } from '../helpers/grpc-js-peer.ts';
import { grpcioCalls, grpcioMissing } from '../helpers/grpcio.ts';
import { eventually, id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const VIP = { ip: '127.0.236.40', port: 50051 };
const POD = '127.0.237.40';
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
});
