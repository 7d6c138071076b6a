// The fuzz suite's generator, run longer: mutated HTTP/1.1 requests and h2c frames through real
// tunnels into `node-waypoint run` as a child process; after each batch the process must be alive
// and a legitimate request must get 200. Exits 1 on the first failure, with the seed to replay it.
// Bounded: a fixed count, and --max-seconds (default 600).
//
//   node bench/fuzz.ts --count 200000 --seed 42 [--h2 20000] [--max-seconds 600]
import { parseArgs } from 'node:util';
import { legitimateStatus, runFuzz } from '../test/helpers/fuzz.ts';
import { startFuzzTarget } from '../test/helpers/fuzz-target.ts';
import { TestMesh } from '../test/helpers/mesh.ts';

const WAYPOINT_IP = '127.9.6.1';
const WEB = { ip: '127.9.6.10', port: 8080 };
const POD_IP = '127.9.6.20';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '100000' },
    seed: { type: 'string', default: '1' },
    h2: { type: 'string' },
    'max-seconds': { type: 'string', default: '600' },
  },
});
const count = Number(values.count);
const seed = Number(values.seed);
const h2 = values.h2 === undefined ? Math.floor(count / 10) : Number(values.h2);
const deadline = Date.now() + Number(values['max-seconds']) * 1000;
if (![count, seed, h2].every(Number.isInteger)) {
  console.error('usage: node bench/fuzz.ts --count N --seed S [--h2 N] [--max-seconds S]');
  process.exit(2);
}

const mesh = await TestMesh.create();
let failed = false;
try {
  const { waypoint, open } = await startFuzzTarget(mesh, {
    waypointIp: WAYPOINT_IP,
    web: WEB,
    podIp: POD_IP,
  });
  const started = Date.now();
  const counts = await runFuzz({
    seed,
    http1: count,
    http2: h2,
    perTunnel: 4,
    batch: 250,
    lingerMs: 500,
    open,
    check: async (done) => {
      if (waypoint.child.exitCode !== null)
        throw new Error(`waypoint exited ${waypoint.child.exitCode}:\n${waypoint.stderr().slice(-3000)}`);
      const status = await legitimateStatus(open);
      if (status !== 200) throw new Error(`a legitimate request got ${status}`);
      if (Date.now() > deadline) throw new Error(`--max-seconds reached after ${JSON.stringify(done)}`);
    },
  });
  const s = (Date.now() - started) / 1000;
  console.log(
    `fuzz seed ${seed}: ${counts.http1} HTTP/1.1 requests, ${counts.http2} h2c connections in ${counts.tunnels} tunnels, ${counts.batches} batches, ${s.toFixed(1)} s (${Math.round((counts.http1 + counts.http2) / s)} inputs/s); waypoint alive`,
  );
} catch (err) {
  failed = true;
  console.error(`fuzz seed ${seed} FAILED: ${(err as Error).message}`);
} finally {
  await mesh.close();
}
process.exit(failed ? 1 : 0);
