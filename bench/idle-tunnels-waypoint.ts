// The waypoint process of bench/idle-tunnels.ts: a Waypoint on the given address, run with
// --expose-gc so that each `measure` line on stdin is answered, after full collections, with one
// JSON line of heap and RSS figures and the tunnels the waypoint holds.
import { createInterface } from 'node:readline';
import { writeHeapSnapshot } from 'node:v8';
import { composeWaypoint } from '../src/compose.ts';
import { memoryCredentials } from '../src/identity/credentials.ts';
import { silentLogger } from '../src/observe/logger.ts';
import { announceReady, childConfig } from './child.ts';

interface Config {
  readonly configDir: string;
  readonly ip: string;
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

const cfg = childConfig<Config>();
const waypoint = composeWaypoint({
  configPaths: [cfg.configDir],
  gateway: { namespace: 'bench', name: 'waypoint' },
  hbone: { host: cfg.ip, port: 15008 },
  admin: { host: cfg.ip, port: 0 },
  metrics: { host: cfg.ip, port: 0 },
  credentials: memoryCredentials({ cert: cfg.cert, key: cfg.key, ca: cfg.ca }),
  endpointHbonePort: 15008,
  log: silentLogger,
  accessLog: 'off',
  defaultMetrics: false,
});
await waypoint.start();
announceReady({ hbone: waypoint.addresses!.hbone });

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');

async function measure(): Promise<Record<string, number>> {
  // Several rounds: finalizers and weak callbacks of one collection free more in the next.
  for (let i = 0; i < 4; i++) {
    gc!();
    await new Promise((r) => setImmediate(r));
  }
  const m = process.memoryUsage();
  const text = await waypoint.metrics.render();
  const tunnels = Number(/^waypoint_hbone_tunnels_active (\d+)/m.exec(text)?.[1] ?? -1);
  const sessions = Number(/^waypoint_hbone_sessions_active (\d+)/m.exec(text)?.[1] ?? -1);
  return {
    heapUsed: m.heapUsed,
    heapTotal: m.heapTotal,
    rss: m.rss,
    external: m.external,
    tunnels,
    sessions,
  };
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line === 'measure') void measure().then((r) => process.stdout.write(`${JSON.stringify(r)}\n`));
  // `snapshot PATH`: a heap snapshot, to see what each tunnel holds (bench/idle-tunnels.ts --snapshot).
  if (line.startsWith('snapshot ')) {
    const path = writeHeapSnapshot(line.slice('snapshot '.length));
    process.stdout.write(`${JSON.stringify({ path })}\n`);
  }
});
lines.on('close', () => {
  void waypoint.close().finally(() => process.exit(0));
});
