// The fuzz suite (issue 9): mutated HTTP/1.1 requests and mutated HTTP/2 frames through real
// tunnels into a waypoint run as a child process (`node-waypoint run`), so a crash is an exit the
// test sees. Fixed seed and count; after every batch the process must be alive and a legitimate
// request must still get 200. bench/fuzz.ts runs the same generator longer (--count, --seed).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { legitimateStatus, runFuzz } from '../helpers/fuzz.ts';
import { type FuzzTarget, startFuzzTarget } from '../helpers/fuzz-target.ts';
import { TestMesh, type WaypointProcess } from '../helpers/mesh.ts';

const WAYPOINT_IP = '127.9.4.1';
const WEB = { ip: '127.9.4.10', port: 8080 };
const POD_IP = '127.9.4.20';

describe('fuzz: hostile bytes inside tunnels never take the waypoint down', () => {
  let mesh: TestMesh;
  let waypoint: WaypointProcess;
  let open: FuzzTarget['open'];

  beforeAll(async () => {
    mesh = await TestMesh.create();
    ({ waypoint, open } = await startFuzzTarget(mesh, { waypointIp: WAYPOINT_IP, web: WEB, podIp: POD_IP }));
  });
  afterAll(() => mesh.close());

  async function alive(): Promise<void> {
    expect(waypoint.child.exitCode, waypoint.stderr().slice(-2000)).toBeNull();
    const status = await legitimateStatus(open);
    expect(status, waypoint.stderr().slice(-1500)).toBe(200);
  }

  it('20,000 mutated HTTP/1.1 requests and 2,000 mutated h2c connections, seed 9', {
    timeout: 180_000,
  }, async () => {
    let counts: Awaited<ReturnType<typeof runFuzz>> | undefined;
    try {
      counts = await runFuzz({
        seed: 9,
        http1: 20_000,
        http2: 2_000,
        perTunnel: 4,
        batch: 250,
        lingerMs: 200,
        open,
        check: alive,
      });
    } catch (err) {
      // A tunnel that cannot open usually means the process is gone: say so, with its last words.
      // (Bounded: on a failed check the process is alive and never exits by itself.)
      await Promise.race([waypoint.exited.catch(() => {}), new Promise((r) => setTimeout(r, 2_000))]);
      throw new Error(
        `${String(err)}; waypoint exit code ${waypoint.child.exitCode}:\n${waypoint.stderr().slice(-1500)}`,
      );
    }
    expect(counts).toMatchObject({ http1: 20_000, http2: 2_000 });
    await alive();
  });
});
