// `node bench/profile.ts [flags]`: what the waypoint spends its CPU and memory on at the istio
// workload. Starts the bench's mesh (bench/lab.ts: backend, stand-ins, `node-waypoint run` with the
// production V8 flags, pinned as `npm run bench` pins them) with bench/profile-agent.ts preloaded
// into the waypoint, drives the istio workload through it, and records over the measured window a
// V8 CPU profile, the main thread's and the process's CPU, and memory (/proc/PID/smaps plus the
// process's own V8 figures) at idle and under load; optionally a second window with the sampling
// heap profiler. Prints the breakdown (bench/profile-report.ts) and writes everything to --out.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  BENCH,
  type Child,
  cleanup,
  ENTRY,
  killAllChildren,
  type Mesh,
  pinning,
  pinSelf,
  prepare,
  ROOT,
  spawnNode,
  startMesh,
} from './lab.ts';
import type { LoadResult } from './loadgen.ts';
import { cpuSeconds, ProcessWatch, threadCpuSeconds } from './procstat.ts';
import { type AgentSnapshot, summarizeSmaps } from './profile-memory.ts';
import { summarizePerfReport } from './profile-perf.ts';
import { type ProfileRun, renderProfile, type WindowFigures } from './profile-report.ts';
import { RATE_WORKLOADS } from './workloads.ts';

const USAGE = `Usage: node bench/profile.ts [flags]      (Node 24: npm exec -- node bench/profile.ts)

  --duration S             measured seconds of each window (default 10, at most 120)
  --warmup S               unrecorded lead-in before each window (default 5)
  --interval-us N          CPU profile sampling interval (default 500)
  --heap                   a second window with the sampling heap profiler (bytes allocated by category)
  --waypoint-node-arg A    Node option added after the production ones (repeatable)
  --waypoint-env K=V       environment for the waypoint (repeatable), e.g. NODE_DISABLE_COMPILE_CACHE=1
  --top N                  functions listed (default 15)
  --out DIR                default bench/out/profile-DATE
  --no-pin                 do not pin (default: waypoint on core 1, the rest on core 0)
  --perf                   also Linux perf over the window without a profiler (needs perf and the right to
                           attach: root or kernel.perf_event_paranoid ≤ 1): native time by library
  --nice N                 renice this run's own processes to N (-20..19; root for < 0), so that a shared
                           machine's other load does not starve the mesh (the printout says so)
`;

const istio = RATE_WORKLOADS.istio;

/** Sends the agent one command (file + SIGUSR2) and waits for its answer line. */
function agent(w: Child, dir: string, command: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`profile agent: no answer to ${command}`)), 15_000);
    w.onLine((line) => {
      if (!line.startsWith('{"agent"')) return;
      const msg = JSON.parse(line) as { agent: string; error?: string };
      if (msg.agent !== command) return;
      clearTimeout(timer);
      if (msg.error) reject(new Error(`profile agent: ${command}: ${msg.error}`));
      else resolve(msg);
    });
    void writeFile(join(dir, 'command'), command).then(() => w.proc.kill('SIGUSR2'));
  });
}

function smaps(pid: number): ReturnType<typeof summarizeSmaps> {
  return summarizeSmaps(readFileSync(`/proc/${pid}/smaps`, 'utf8'), readlinkSync(`/proc/${pid}/exe`));
}

async function memoryAt(w: Child, dir: string, name: string): Promise<WindowFigures['memory']> {
  await agent(w, dir, `snapshot ${name}`);
  const snap = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as AgentSnapshot;
  return { smaps: smaps(w.pid), agent: snap };
}

export type WindowMode = 'plain' | 'cpu' | 'heap';

const COMMANDS: Record<WindowMode, { before?: (o: WindowOpts) => string; after?: string }> = {
  plain: {},
  cpu: { before: (o) => `cpu-start ${o.intervalUs}`, after: 'cpu-stop cpu' },
  heap: { before: () => 'heap-start 32768', after: 'heap-stop heap' },
};

interface WindowOpts {
  readonly durationS: number;
  readonly warmupS: number;
  readonly intervalUs: number;
  readonly restCore: string | undefined;
  readonly nice: number | undefined;
  /** Record DIR/perf.data over this window (the one without a V8 profiler). */
  readonly perf?: boolean;
}

/** `perf record` of the waypoint for seconds; resolves when it has written its file. */
function perfRecord(pid: number, dir: string, seconds: number): Promise<void> {
  return new Promise((resolve) => {
    const args = [
      'record',
      '-F',
      '499',
      '-p',
      String(pid),
      '-o',
      join(dir, 'perf.data'),
      '--',
      'sleep',
      String(seconds),
    ];
    const p = spawn('perf', args, { stdio: 'ignore' });
    p.on('error', () => resolve());
    p.on('exit', () => resolve());
  });
}

/** perf's samples grouped by library (bench/profile-perf.ts), or undefined without a perf.data. */
function perfSummary(dir: string): ReturnType<typeof summarizePerfReport> | undefined {
  try {
    const args = ['report', '-i', join(dir, 'perf.data'), '--no-children', '--sort', 'dso,sym', '--stdio'];
    const text = execFileSync('perf', [...args, '-g', 'none', '--percent-limit', '0'], {
      encoding: 'utf8',
      timeout: 120_000,
      maxBuffer: 64 * 2 ** 20,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return summarizePerfReport(text);
  } catch {
    return undefined;
  }
}

/** Renices processes this run started (never anyone else's), each by its pid. */
function renice(nice: number | undefined, pids: readonly number[]): void {
  if (nice === undefined) return;
  execFileSync('renice', ['-n', String(nice), '-p', ...pids.map(String)], {
    stdio: 'ignore',
    timeout: 5_000,
  });
}

function loadJob(o: WindowOpts): Record<string, unknown> {
  return {
    kind: 'load',
    host: ENTRY.waypoint.addr.ip,
    port: ENTRY.waypoint.addr.port,
    hostHeader: ENTRY.waypoint.host,
    connections: istio.connections,
    rate: istio.rate,
    durationMs: o.durationS * 1000,
    warmupMs: o.warmupS * 1000,
    method: istio.method,
    path: '/echo',
    headers: { 'content-type': 'application/octet-stream' },
    bodyBytes: istio.requestBytes,
    timeoutMs: 10_000,
    drainMs: 5_000,
  };
}

/**
 * One istio window, the loadgen in its own process. A profiler is started before the loadgen
 * (starting V8's CPU profiler stalls the loop while it logs every code object: that stall must not
 * land in the window) and stopped at the window's end; the CPU profile is cut to the window with
 * the agent's clock (`mark`).
 */
async function window(mesh: Mesh, dir: string, mode: WindowMode, o: WindowOpts): Promise<WindowFigures> {
  const w = mesh.waypoint!;
  const cmd = COMMANDS[mode];
  if (cmd.before) await agent(w, dir, cmd.before(o));
  const lg = spawnNode('loadgen', [join(BENCH, 'loadgen-cli.ts'), JSON.stringify(loadJob(o))], {
    core: o.restCore,
    logFile: join(dir, `${mode}.loadgen.log`),
  });
  renice(o.nice, [lg.pid]);
  const watch = new ProcessWatch(new Map([['waypoint', w.pid]]));
  const cpu = (): { proc: number; main: number } => ({
    proc: cpuSeconds(w.pid) ?? Number.NaN,
    main: threadCpuSeconds(w.pid, w.pid) ?? Number.NaN,
  });
  let begin: { proc: number; main: number } | undefined;
  let mark: Promise<number> | undefined;
  let end: Promise<{ proc: number; main: number; memory: WindowFigures['memory'] }> | undefined;
  let result: LoadResult | undefined;
  let perf: Promise<void> | undefined;
  lg.onLine((line) => {
    const msg = JSON.parse(line) as { phase?: string; result?: LoadResult };
    if (msg.phase === 'measure-start' && !begin) {
      begin = cpu();
      watch.start(100);
      mark = agent(w, dir, 'mark').then((m) => Number(m.t));
      if (o.perf && mode === 'plain') perf = perfRecord(w.pid, dir, o.durationS);
    } else if (msg.phase === 'measure-end' && begin && !end) {
      const c = cpu();
      end = (async () => {
        if (cmd.after) await agent(w, dir, cmd.after);
        return { ...c, memory: await memoryAt(w, dir, `${mode}-load`) };
      })();
    } else if (msg.result) result = msg.result;
  });
  const code = await lg.exited;
  if (!begin || !end || !result) throw new Error(`load generator exited ${code}: ${lg.stderrTail()}`);
  const e = await end;
  await perf;
  const peak = watch.stop().processes.waypoint?.peakRssBytes ?? 0;
  return {
    requests: result.completed,
    warmupRequests: result.warmupRequests,
    ok: result.ok,
    unsent: result.unsent,
    seconds: result.windowSeconds,
    processCpuS: e.proc - begin.proc,
    mainThreadCpuS: e.main - begin.main,
    peakRssMB: peak / 1e6,
    p99Ms: result.latency.p99,
    memory: e.memory,
    markUs: await mark!,
    loadAvg: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

function parse(argv: readonly string[]) {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      duration: { type: 'string' },
      warmup: { type: 'string' },
      'interval-us': { type: 'string' },
      heap: { type: 'boolean' },
      'waypoint-node-arg': { type: 'string', multiple: true },
      'waypoint-env': { type: 'string', multiple: true },
      top: { type: 'string' },
      out: { type: 'string' },
      'no-pin': { type: 'boolean' },
      nice: { type: 'string' },
      perf: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const num = (v: string | undefined, d: number, max: number): number =>
    Math.min(max, Math.max(0, Number(v ?? d) || d));
  const env: Record<string, string> = {};
  for (const kv of values['waypoint-env'] ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new Error(`--waypoint-env: expected K=V, got ${JSON.stringify(kv)}`);
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return {
    help: values.help === true,
    durationS: num(values.duration, 10, 120),
    warmupS: num(values.warmup, 5, 30),
    intervalUs: num(values['interval-us'], 500, 100_000),
    heap: values.heap === true,
    nodeArgs: values['waypoint-node-arg'] ?? [],
    env,
    top: num(values.top, 15, 200),
    out: values.out,
    pin: values['no-pin'] !== true,
    perf: values.perf === true,
    nice:
      values.nice === undefined
        ? undefined
        : Math.min(19, Math.max(-20, Math.trunc(Number(values.nice)) || 0)),
  };
}

async function main(argv: readonly string[]): Promise<number> {
  const o = parse(argv);
  if (o.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const dir = o.out ?? join(BENCH, 'out', `profile-${stamp}`);
  await mkdir(dir, { recursive: true });
  const pin = pinning(o.pin);
  pinSelf(pin);
  // Bounded: a run that hangs anyway is killed with its children.
  const limitS = 120 + (o.durationS + o.warmupS + 10) * (o.heap ? 3 : 2);
  setTimeout(() => {
    process.stderr.write(`profile: time limit of ${limitS} s reached\n`);
    killAllChildren();
    process.exit(2);
  }, limitS * 1000).unref();
  const certs = await prepare();
  let mesh: Mesh | undefined;
  try {
    mesh = await startMesh({
      certs,
      pin,
      logDir: dir,
      label: 'profile',
      responseBytes: istio.responseBytes,
      framing: 'length',
      withWaypoint: true,
      waypointArgs: [],
      waypointNodeArgs: [...o.nodeArgs, '--import', join(BENCH, 'profile-agent.ts')],
      loopLagMs: 0,
      // One process, as bench/run.ts's default: the profile is of the process that serves.
      waypointEnv: { WAYPOINT_CONCURRENCY: '1', BENCH_PROFILE_DIR: dir, ...o.env },
    });
    const w = mesh.waypoint!;
    renice(o.nice, [process.pid, mesh.backend.pid, mesh.inbound.pid, mesh.outbound.pid, w.pid]);
    await new Promise((r) => setTimeout(r, 1_000));
    const idle = await memoryAt(w, dir, 'idle');
    const idleRssMB = (readStatusRss(w.pid) ?? 0) / 1e6;
    const win = {
      durationS: o.durationS,
      warmupS: o.warmupS,
      intervalUs: o.intervalUs,
      restCore: pin.restCore,
      nice: o.nice,
    };
    process.stderr.write(`profile: ${o.durationS} s of the istio workload, no profiler\n`);
    const plain = await window(mesh, dir, 'plain', { ...win, perf: o.perf });
    process.stderr.write(`profile: ${o.durationS} s with the CPU profiler (every ${o.intervalUs} µs)\n`);
    const cpu = await window(mesh, dir, 'cpu', win);
    let heap: WindowFigures | undefined;
    if (o.heap) {
      process.stderr.write(`profile: ${o.durationS} s with the sampling heap profiler\n`);
      heap = await window(mesh, dir, 'heap', win);
    }
    const run: ProfileRun = {
      date: new Date().toISOString(),
      command: `node bench/profile.ts ${argv.join(' ')}`.trim(),
      node: process.version,
      pinning: o.nice === undefined ? pin.note : `${pin.note}; this run's processes reniced to ${o.nice}`,
      root: ROOT,
      nodeArgs: o.nodeArgs,
      env: o.env,
      idle: { ...idle, rssMB: idleRssMB },
      plain,
      cpu: { ...cpu, profile: JSON.parse(readFileSync(join(dir, 'cpu.cpuprofile'), 'utf8')) },
      ...(heap
        ? { heap: { ...heap, profile: JSON.parse(readFileSync(join(dir, 'heap.heapprofile'), 'utf8')) } }
        : {}),
      top: o.top,
    };
    const perf = o.perf ? perfSummary(dir) : undefined;
    const text = renderProfile(perf ? { ...run, perf } : run);
    process.stdout.write(text);
    await writeFile(join(dir, 'summary.md'), text);
    process.stderr.write(`profile: profiles, snapshots and logs in ${dir}\n`);
    return 0;
  } finally {
    await mesh?.stop();
    await cleanup(certs);
  }
}

function readStatusRss(pid: number): number | undefined {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : undefined;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`profile: ${err.message}\n`);
    killAllChildren();
    process.exit(1);
  },
);
