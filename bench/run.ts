// `npm run bench`: the same workloads over three paths in one run on one machine — direct (no mesh),
// the tunnel floor (outbound stand-in → inbound stand-in, no waypoint: what ambient L4 costs), and
// the waypoint (outbound stand-in → `node-waypoint run` → inbound stand-in) — and a report of
// latency, throughput and the waypoint's CPU and memory, each against the tunnel floor. See
// bench/README.md for what is measured and how.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type Baseline, prepareBaseline } from './baseline.ts';
import {
  ADDR,
  type Addr,
  BENCH,
  type Certs,
  type Child,
  cleanup,
  ENTRY,
  HAPROXY_BIN,
  killAllChildren,
  type Mesh,
  metricValue,
  type PathName,
  type Pinning,
  pinning,
  pinSelf,
  prepare,
  ROOT,
  scrapeMetrics,
  spawnNode,
  startMesh,
} from './lab.ts';
import type { LoadResult } from './loadgen.ts';
import {
  clockTicks,
  memory,
  type ProcessFigures,
  ProcessWatch,
  type SystemFigures,
  waitQuiet,
} from './procstat.ts';
import { type BenchRedis, REDIS_IP, startRedis } from './redis.ts';
import { type BenchReport, printReport } from './report.ts';
import { type ChainName, chainYaml, type RouteShape, routesYaml } from './scenarios.ts';
import { startTracingSink, type TracingSink } from './tracing-sink.ts';
import type { TransferResult } from './transfer.ts';
import { RATE_WORKLOADS, type RateWorkload, type WorkloadName } from './workloads.ts';

const USAGE = `Usage: npm run bench -- [flags]        (or: node bench/run.ts [flags] with Node 24)

  --workload LIST     istio, seed, max, transfer (comma-separated or repeated; default all)
  --path LIST         direct, floor, waypoint, haproxy, baseline (default: direct, floor, waypoint, and
                      haproxy when HAProxy is installed; baseline with --baseline; ratios need floor)
  --baseline REF      also run the waypoint of commit REF (git archive of REF into a temporary directory,
                      this tree's node_modules) as path "baseline", beside this tree's, same workload
  --rounds N          run the paths N times over, alternating (floor, waypoint, baseline, haproxy, floor, ...;
                      default 1, at most 10); the report gives every round and the median
  --loop-lag-ms N     resolution of the event-loop probe inside each waypoint (bench/loop-lag.ts; default 2;
                      0 = no probe). It costs the waypoint about 2% of a core idle at 2 ms, 1% at 10 ms
  --duration S        measured seconds for istio, seed and max (default 15, 15, 10)
  --warmup S          unrecorded lead-in on the same connections before each run (default 2)
  --transfer-mib N    size of the one-tunnel transfer, each direction (default 256)
  --framing F         backend response bodies: length (content-length, default) or chunked
  --policies N        N AuthorizationPolicies on the backend Service, worst case (default 0)
  --routes N          N HTTPRoute rules on the backend Service, worst case: N-1 that never match,
                      the matching PathPrefix "/" last (default 0: no HTTPRoute)
  --route-shape S     exact (N-1 Exact paths, default) or prefix (N-1 PathPrefix + header matches)
  --chain C           full-local or full-redis: AuthorizationPolicy ALLOW, HTTPRoute timeout + retry,
                      DestinationRule pool + outlier detection, a rate limit that never trips (Local, or
                      Global through a redis-server the bench starts on ${REDIS_IP})
  --sample-ms N       VmRSS sampling interval (default 100)
  --waypoint-arg A    extra argument for \`node-waypoint run\` (repeatable, e.g. --waypoint-arg=--access-log=off)
  --concurrency N     the waypoint's worker processes (run --concurrency; default 1); its CPU and
                      memory are those of the primary and its workers; with N > 1 add --no-pin
                      so that the workers get more than the one waypoint core
  --waypoint-node-arg A  Node option for the waypoint process, added to the production ones (repeatable, e.g. --waypoint-node-arg=--trace-gc;
                      its output lands in bench/out/logs-*/WORKLOAD.waypoint.log)
  --no-autocannon     skip the autocannon cross-check on the direct path (max workload)
  --no-pin            do not pin processes to cores with taskset
  --tracing PERCENT   the waypoint traces at PERCENT% (a mesh-default Telemetry) to an OTLP/HTTP sink
  --controller        the controller bench instead (bench/controller.ts: 5,000 Services, 50,000 Pods,
                      50 waypoints in a fake API server; --services, --pods-per-service, --waypoints, --changes)
  --quiet-wait S      before each workload, wait up to S s for the machine to be idle (default 10; 0 = no wait)
  --out DIR           where results go (default bench/out)
  --render FILE       print the tables of a saved bench/out/bench-*.json again, run nothing
  -h, --help
`;

export type { RateWorkload, WorkloadName } from './workloads.ts';

export interface Window {
  readonly wallSeconds: number;
  readonly processes: Record<string, ProcessFigures>;
  /** The whole machine over the window (other people's work included). */
  readonly system: SystemFigures;
}

/** From the waypoint's own /stats/prometheus (prom-client's Node.js metrics), over the window. */
export interface WaypointRuntime {
  /** nodejs_eventloop_lag_max_seconds / _p99_seconds at the end (prom-client resets them on each scrape). */
  readonly eventLoopLagMaxMs?: number;
  readonly eventLoopLagP99Ms?: number;
  /** nodejs_gc_duration_seconds_sum / _count deltas, by kind. */
  readonly gcMinorMs?: number;
  readonly gcMinorCount?: number;
  readonly gcMajorMs?: number;
  readonly gcMajorCount?: number;
  readonly heapUsedMB?: number;
}

/** The event loop's delay inside a waypoint over the window (bench/loop-lag.ts, 2 ms resolution). */
export interface LoopLag {
  readonly seconds: number;
  readonly samples: number;
  readonly maxMs: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly meanMs: number;
  readonly resolutionMs: number;
}

export interface LoadRun {
  readonly workload: RateWorkload['name'];
  readonly path: PathName;
  /** 1-based round (--rounds); absent in older runs. */
  readonly round?: number;
  /** os.loadavg() when the run ended: 1, 5 and 15 minutes. */
  readonly loadAvg?: readonly number[];
  readonly loopLag?: LoopLag;
  readonly error?: string;
  readonly result?: LoadResult;
  readonly window?: Window;
  readonly runtime?: WaypointRuntime;
}

export interface TransferRun {
  readonly path: PathName;
  readonly loopLag?: LoopLag;
  readonly direction: 'download' | 'upload';
  readonly error?: string;
  readonly result?: TransferResult;
  readonly window?: Window;
  readonly runtime?: WaypointRuntime;
}

function runtimeBetween(a: string, b: string): WaypointRuntime | undefined {
  if (!a || !b) return undefined;
  const ms = (v: number | undefined): number | undefined => (v === undefined ? undefined : v * 1000);
  const delta = (name: string, labels: string): number | undefined => {
    const x = metricValue(b, name, labels);
    // A label set appears only once observed: absent at the start means 0 then.
    return x === undefined ? undefined : x - (metricValue(a, name, labels) ?? 0);
  };
  const out: Record<string, number | undefined> = {
    eventLoopLagMaxMs: ms(metricValue(b, 'nodejs_eventloop_lag_max_seconds')),
    eventLoopLagP99Ms: ms(metricValue(b, 'nodejs_eventloop_lag_p99_seconds')),
    gcMinorMs: ms(delta('nodejs_gc_duration_seconds_sum', 'kind="minor"')),
    gcMinorCount: delta('nodejs_gc_duration_seconds_count', 'kind="minor"'),
    gcMajorMs: ms(delta('nodejs_gc_duration_seconds_sum', 'kind="major"')),
    gcMajorCount: delta('nodejs_gc_duration_seconds_count', 'kind="major"'),
  };
  const heap = metricValue(b, 'nodejs_heap_size_used_bytes');
  if (heap !== undefined) out.heapUsedMB = heap / 1e6;
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined)) as WaypointRuntime;
}

export interface AutocannonRun {
  readonly error?: string;
  readonly connections: number;
  readonly durationS: number;
  readonly rps?: number;
  readonly total?: number;
  readonly errors?: number;
  readonly non2xx?: number;
  /** Its own CPU per request, start-up and warmup included. */
  readonly cpuMicrosPerRequest?: number;
  /** Milliseconds; autocannon records whole milliseconds. */
  readonly latency?: { p50: number; p90: number; p99: number; mean: number; max: number };
}

function list(values: readonly string[] | undefined, allowed: readonly string[], flag: string): string[] {
  const out = (values ?? [])
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean);
  for (const v of out)
    if (!allowed.includes(v))
      throw new Error(`${flag}: unknown ${JSON.stringify(v)} (one of ${allowed.join(', ')})`);
  return out.length > 0 ? allowed.filter((a) => out.includes(a)) : [...allowed];
}

function positive(flag: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n))
    throw new Error(`${flag}: expected a positive number, got ${JSON.stringify(v)}`);
  return n;
}

function machine(): BenchReport['meta']['machine'] {
  let cpuModel = 'unknown';
  try {
    cpuModel =
      /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpuModel;
  } catch {}
  let nproc = 0;
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8', timeout: 5_000 }).trim());
  } catch {}
  return { nproc, cpuModel, memoryGiB: totalmem() / 1024 ** 3, kernel: release() };
}

function git(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 5_000,
    }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'bin', 'config', 'filters'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 5_000,
    }).trim();
    return dirty
      ? `${head} + uncommitted changes in ${dirty.split('\n').length} file(s) under src/bin/config/filters`
      : head;
  } catch {
    return 'unknown';
  }
}

interface Ctx {
  readonly pin: Pinning;
  readonly logDir: string;
  readonly sampleMs: number;
  readonly stamp: string;
}

/** The L7 hop of a run: its process (SIGUSR2 → loop-lag line) and, for a waypoint, its metrics port. */
interface Hop {
  readonly child: Child;
  readonly metrics?: Addr;
}

/** Asks the hop's bench/loop-lag.ts for the delay since the last ask; resolves with its next line. */
function askLoopLag(hop: Hop | undefined): Promise<LoopLag | undefined> {
  if (!hop || hop.child.name === 'haproxy') return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), 2_000);
    hop.child.onLine((line) => {
      if (!line.startsWith('{"loopLag"')) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { loopLag: LoopLag }).loopLag);
    });
    try {
      hop.child.proc.kill('SIGUSR2');
    } catch {
      resolve(undefined);
    }
  });
}

type JobOutcome<R> = {
  result?: R;
  window?: Window;
  error?: string;
  runtime?: WaypointRuntime;
  loopLag?: LoopLag;
};

/** Runs one load-generator job in its own process, sampling the mesh processes over its measured window. */
function runJob<R>(
  ctx: Ctx,
  label: string,
  job: Record<string, unknown>,
  pids: ReadonlyMap<string, number>,
  hop: Hop | undefined,
): Promise<JobOutcome<R>> {
  const child = spawnNode('loadgen', [join(BENCH, 'loadgen-cli.ts'), JSON.stringify(job)], {
    core: ctx.pin.restCore,
    logFile: join(ctx.logDir, `${label}.loadgen.log`),
  });
  const all = new Map(pids);
  all.set('loadgen', child.pid);
  all.set('bench', process.pid);
  const watch = new ProcessWatch(all);
  let started = false;
  let window: Window | undefined;
  let result: R | undefined;
  let error: string | undefined;
  let metricsStart: Promise<string> | undefined;
  let metricsEnd: Promise<string> | undefined;
  let lagEnd: Promise<LoopLag | undefined> | undefined;
  child.onLine((line) => {
    let msg: { phase?: string; result?: R; error?: string };
    try {
      msg = JSON.parse(line);
    } catch {
      return;
    }
    if (msg.phase === 'measure-start' && !started) {
      started = true;
      watch.start(ctx.sampleMs);
      void askLoopLag(hop); // starts the hop's histogram over
      if (hop?.metrics) metricsStart = scrapeMetrics(hop.metrics);
    } else if (msg.phase === 'measure-end' && started && !window) {
      window = watch.stop();
      lagEnd = askLoopLag(hop);
      if (hop?.metrics) metricsEnd = scrapeMetrics(hop.metrics);
    } else if (msg.result) result = msg.result;
    else if (msg.error) error = msg.error;
  });
  return child.exited.then(async (code) => {
    if (started && !window) window = watch.stop();
    if (!result && !error) error = `load generator exited ${code}: ${child.stderrTail().slice(-500)}`;
    const runtime =
      metricsStart && metricsEnd ? runtimeBetween(await metricsStart, await metricsEnd) : undefined;
    const loopLag = await lagEnd;
    return {
      ...(result ? { result } : {}),
      ...(window ? { window } : {}),
      ...(error ? { error } : {}),
      ...(runtime ? { runtime } : {}),
      ...(loopLag ? { loopLag } : {}),
    };
  });
}

function meshPids(mesh: Mesh): Map<string, number> {
  const m = new Map<string, number>([
    ['backend', mesh.backend.pid],
    ['inbound', mesh.inbound.pid],
    ['outbound', mesh.outbound.pid],
  ]);
  if (mesh.waypoint) m.set('waypoint', mesh.waypoint.pid);
  if (mesh.baseline) m.set('baseline', mesh.baseline.pid);
  if (mesh.haproxy) m.set('haproxy', mesh.haproxy.pid);
  return m;
}

function hopOf(mesh: Mesh, path: PathName): Hop | undefined {
  if (path === 'waypoint' && mesh.waypoint) return { child: mesh.waypoint, metrics: ADDR.waypointMetrics };
  if (path === 'baseline' && mesh.baseline) return { child: mesh.baseline, metrics: ADDR.baselineMetrics };
  if (path === 'haproxy' && mesh.haproxy) return { child: mesh.haproxy };
  return undefined;
}

function runAutocannon(
  ctx: Ctx,
  w: RateWorkload,
  durationS: number,
  warmupS: number,
): Promise<AutocannonRun> {
  const body = 'q'.repeat(w.requestBytes);
  const url = `http://${ENTRY.direct.addr.ip}:${ENTRY.direct.addr.port}/echo`;
  const args = [
    join(ROOT, 'node_modules/autocannon/autocannon.js'),
    '-c',
    String(w.connections),
    '-d',
    String(durationS),
    ...(warmupS > 0 ? ['-W', '[', '-c', String(w.connections), '-d', String(warmupS), ']'] : []),
    '-m',
    w.method,
    '-H',
    'content-type=application/octet-stream',
    '-b',
    body,
    '--json',
    '-n',
    url,
  ];
  const child: Child = spawnNode('autocannon', args, {
    core: ctx.pin.restCore,
    logFile: join(ctx.logDir, `${w.name}.autocannon.log`),
  });
  const base = { connections: w.connections, durationS };
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), (durationS + warmupS + 60) * 1000);
  // Its CPU from start to its final JSON line (warmup and start-up included).
  const watch = new ProcessWatch(new Map([['autocannon', child.pid]]));
  watch.start(1_000);
  let cpuSeconds: number | undefined;
  child.onLine((line) => {
    if (cpuSeconds === undefined && line.startsWith('{') && (warmupS === 0 || line.includes('"warmup":')))
      cpuSeconds = watch.stop().processes['autocannon']?.cpuSeconds;
  });
  return child.exited.then((code) => {
    clearTimeout(timer);
    if (cpuSeconds === undefined) watch.stop();
    const last = [...child.lines].reverse().find((l) => l.startsWith('{'));
    if (!last) return { ...base, error: `autocannon exited ${code}: ${child.stderrTail().slice(-300)}` };
    const r = JSON.parse(last) as {
      duration: number;
      errors: number;
      non2xx: number;
      requests: { total: number };
      latency: { p50: number; p90: number; p99: number; mean: number; max: number };
      warmup?: { requests: { total: number } };
    };
    const all = r.requests.total + (r.warmup?.requests.total ?? 0);
    return {
      ...base,
      ...(cpuSeconds !== undefined && all > 0 ? { cpuMicrosPerRequest: (cpuSeconds / all) * 1e6 } : {}),
      rps: r.requests.total / r.duration,
      total: r.requests.total,
      errors: r.errors,
      non2xx: r.non2xx,
      latency: {
        p50: r.latency.p50,
        p90: r.latency.p90,
        p99: r.latency.p99,
        mean: r.latency.mean,
        max: r.latency.max,
      },
    };
  });
}

async function main(argv: string[]): Promise<number> {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 24) {
    process.stderr.write(`bench needs Node.js 24 (this is ${process.version}); run it with npm run bench\n`);
    return 1;
  }
  // The controller's bench is a run of its own (bench/controller.ts): a fake API server, no data path.
  if (argv.includes('--controller')) {
    await import('./controller.ts');
    return 0;
  }
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      workload: { type: 'string', multiple: true },
      path: { type: 'string', multiple: true },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      'transfer-mib': { type: 'string' },
      framing: { type: 'string' },
      policies: { type: 'string' },
      routes: { type: 'string' },
      'route-shape': { type: 'string' },
      chain: { type: 'string' },
      'sample-ms': { type: 'string' },
      'waypoint-arg': { type: 'string', multiple: true },
      'waypoint-node-arg': { type: 'string', multiple: true },
      concurrency: { type: 'string' },
      'no-autocannon': { type: 'boolean' },
      'no-pin': { type: 'boolean' },
      baseline: { type: 'string' },
      rounds: { type: 'string' },
      'loop-lag-ms': { type: 'string' },
      'quiet-wait': { type: 'string' },
      tracing: { type: 'string' },
      out: { type: 'string' },
      render: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.render) {
    const saved = JSON.parse(readFileSync(values.render, 'utf8')) as BenchReport;
    saved.quietNotes ??= [];
    saved.waypointNotes ??= [];
    saved.meta.finished ??= saved.meta.date;
    process.stdout.write(printReport(saved));
    return 0;
  }
  const workloads = list(
    values.workload,
    ['istio', 'seed', 'max', 'transfer'],
    '--workload',
  ) as WorkloadName[];
  const allPaths: PathName[] = ['direct', 'floor', 'waypoint', 'baseline', 'haproxy'];
  const paths = (
    values.path
      ? list(values.path, allPaths, '--path')
      : allPaths.filter((p) => (p === 'haproxy' ? HAPROXY_BIN : p === 'baseline' ? values.baseline : true))
  ) as PathName[];
  if (paths.includes('baseline') && !values.baseline) throw new Error('--path baseline needs --baseline REF');
  const rounds = values.rounds === undefined ? 1 : Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 10) throw new Error('--rounds: 1 to 10');
  const loopLagMs = values['loop-lag-ms'] === undefined ? 2 : Number(values['loop-lag-ms']);
  if (!Number.isInteger(loopLagMs) || loopLagMs < 0 || loopLagMs > 100)
    throw new Error('--loop-lag-ms: 0 (no probe) to 100');
  const durationOverride =
    values.duration === undefined ? undefined : positive('--duration', values.duration, 0);
  const warmupS = values.warmup === undefined ? 2 : Number(values.warmup);
  if (!(warmupS >= 0)) throw new Error('--warmup: expected seconds (0 or more)');
  const transferBytes = Math.round(positive('--transfer-mib', values['transfer-mib'], 256) * 1024 * 1024);
  const framing = values.framing ?? 'length';
  if (framing !== 'length' && framing !== 'chunked') throw new Error('--framing: length or chunked');
  const quietWaitS = values['quiet-wait'] === undefined ? 10 : Number(values['quiet-wait']);
  if (!(quietWaitS >= 0)) throw new Error('--quiet-wait: expected seconds (0 or more)');
  const sampleMs = positive('--sample-ms', values['sample-ms'], 100);
  const routes = values.routes === undefined ? 0 : Number(values.routes);
  if (!Number.isInteger(routes) || routes < 0)
    throw new Error('--routes: expected a whole number (0 or more)');
  const routeShape = values['route-shape'] ?? 'exact';
  if (routeShape !== 'exact' && routeShape !== 'prefix') throw new Error('--route-shape: exact or prefix');
  const chain = values.chain;
  if (chain !== undefined && chain !== 'full-local' && chain !== 'full-redis')
    throw new Error('--chain: full-local or full-redis');
  if (chain && routes > 0)
    throw new Error('--chain brings its own HTTPRoute: do not combine it with --routes');
  // Extra config on the backend Service: a request that is not answered 200 through it is a bench bug.
  const scenario = {
    routes,
    routeShape: routeShape as RouteShape,
    ...(chain ? { chain: chain as ChainName } : {}),
  };
  const configured = routes > 0 || chain !== undefined;
  const outDir = values.out ?? join(BENCH, 'out');
  const host = machine(); // before pinning: nproc counts only the cores this process may use
  const pin = pinning(!values['no-pin']);
  pinSelf(pin);

  const started = new Date().toISOString();
  const stamp = started.replace(/[:.]/g, '-');
  const logDir = join(outDir, `logs-${stamp}`);
  await mkdir(logDir, { recursive: true });
  const ctx: Ctx = { pin, logDir, sampleMs, stamp };

  const plannedS = workloads.reduce((sum, w) => {
    if (w === 'transfer') return sum + paths.length * 2 * 10;
    const d = durationOverride ?? RATE_WORKLOADS[w].defaultS;
    return sum + rounds * paths.length * (d + warmupS + 3) + (w === 'max' ? d + warmupS : 0) + 5;
  }, 0);
  // Every loop is bounded; this is the backstop if something hangs anyway.
  const watchdog = setTimeout(
    () => {
      process.stderr.write(
        `bench: hard time limit (${Math.round(plannedS * 3 + 300)} s) reached, stopping\n`,
      );
      killAllChildren();
      process.exit(3);
    },
    (plannedS * 3 + 300) * 1000,
  );
  watchdog.unref();
  let certs: Certs | undefined;
  let redis: BenchRedis | undefined;
  let sink: TracingSink | undefined;
  let baseline: Baseline | undefined;
  const onSignal = (): void => {
    killAllChildren();
    void redis?.stop();
    void baseline?.remove();
    if (certs) void cleanup(certs);
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const command = `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`;
  process.stderr.write(
    `bench: ${workloads.join(', ')} over ${paths.join(', ')}; about ${Math.round(plannedS / 60)} min planned\n` +
      `bench: ${pin.note}\nbench: logs in ${logDir}\n`,
  );

  const extra: Record<string, string> = {};
  if (routes > 0) extra['routes.yaml'] = routesYaml(routes, scenario.routeShape);
  if (scenario.chain) extra['chain.yaml'] = chainYaml(scenario.chain);
  sink =
    values.tracing === undefined
      ? undefined
      : await startTracingSink(positive('--tracing', values.tracing, 0));
  if (sink) Object.assign(extra, sink.extra);
  certs = await prepare(Math.floor(positive('--policies', values.policies, 0)), extra);
  // A copy beside the logs: the temporary config directory is removed at the end.
  for (const [file, yaml] of Object.entries(extra)) await writeFile(join(logDir, file), yaml);
  // One process unless told (run's own default is the machine's CPUs). Through the environment, so
  // that a --baseline commit older than the flag runs too (it ignores the variable).
  process.env.WAYPOINT_CONCURRENCY = String(Math.floor(positive('--concurrency', values.concurrency, 1)));
  const waypointArgs = [...(values['waypoint-arg'] ?? [])];
  if (sink) {
    const meshFile = join(logDir, 'tracing-mesh.yaml');
    await writeFile(meshFile, sink.meshConfig);
    waypointArgs.push('--mesh-config', meshFile);
    process.stderr.write(`bench: tracing at ${values.tracing}% to an OTLP/HTTP sink\n`);
  }
  if (scenario.chain === 'full-redis' && paths.includes('waypoint')) {
    redis = await startRedis(pin);
    waypointArgs.push('--redis-url', redis.url);
    process.stderr.write(`bench: redis-server at ${redis.url} (pid ${redis.pid})\n`);
  }
  baseline =
    values.baseline && paths.includes('baseline') ? await prepareBaseline(values.baseline) : undefined;
  if (baseline)
    process.stderr.write(
      `bench: baseline ${baseline.ref} = ${baseline.commit} in ${baseline.root} (V8 flags: ${baseline.nodeFlags.join(' ')})\n`,
    );
  const loads: LoadRun[] = [];
  const transfers: TransferRun[] = [];
  const idleRss: NonNullable<BenchReport['idleRss']> = [];
  let autocannon: AutocannonRun | undefined;
  const waypointNotes: string[] = [];
  const quietNotes: string[] = [];
  try {
    for (const name of workloads) {
      if (quietWaitS > 0) {
        const q = await waitQuiet(quietWaitS, 0.25);
        const note = `${name}: machine ${q.busyCpus < 0.25 ? 'quiet' : 'STILL BUSY'} (${q.busyCpus.toFixed(2)} CPUs busy before start, waited ${q.waitedS.toFixed(0)} s)`;
        process.stderr.write(`bench: ${note}\n`);
        quietNotes.push(note);
      }
      const responseBytes = name === 'transfer' ? 1024 : RATE_WORKLOADS[name].responseBytes;
      process.stderr.write(
        `bench: ${name}: starting backend, stand-ins${paths.includes('waypoint') ? ', waypoint' : ''}\n`,
      );
      let mesh: Mesh;
      try {
        mesh = await startMesh({
          certs,
          pin,
          logDir,
          label: name,
          responseBytes,
          framing,
          withWaypoint: paths.includes('waypoint'),
          withHaproxy: paths.includes('haproxy'),
          loopLagMs,
          ...(baseline ? { baseline } : {}),
          waypointArgs,
          ...(values['waypoint-node-arg'] ? { waypointNodeArgs: values['waypoint-node-arg'] } : {}),
        });
      } catch (err) {
        const error = `mesh did not start: ${(err as Error).message}`;
        process.stderr.write(`bench: ${name}: ${error}\n`);
        for (const path of paths) {
          if (name === 'transfer') {
            transfers.push({ path, direction: 'download', error }, { path, direction: 'upload', error });
          } else loads.push({ workload: name, path, error });
        }
        continue;
      }
      const pids = meshPids(mesh);
      // Each hop's RSS after start-up and one probe request, before any load (1 s to settle).
      await new Promise((r) => setTimeout(r, 1_000));
      for (const [hop, child] of [
        ['waypoint', mesh.waypoint],
        ['baseline', mesh.baseline],
        ['haproxy', mesh.haproxy],
      ] as const) {
        const rss = child ? memory(child.pid)?.rss : undefined;
        if (rss !== undefined) idleRss.push({ workload: name, hop, rssMB: Math.round(rss / 1e5) / 10 });
      }
      if (redis) pids.set('redis', redis.pid);
      for (const [path, got] of Object.entries(mesh.probes)) {
        if (got === '200') continue;
        const note = `${name}: a request through the ${path} path at start-up got ${got} (expected 200)`;
        process.stderr.write(`bench: ${note}\n`);
        waypointNotes.push(note);
        if (configured) {
          // Measuring 403s or 404s would report the cost of refusing, not of routing.
          await mesh.stop();
          throw new Error(
            `the configured routes/chain do not answer 200 through the ${path} path (got ${got}); config and logs in ${logDir}`,
          );
        }
      }
      try {
        if (name === 'transfer') {
          for (const path of paths) {
            for (const direction of ['download', 'upload'] as const) {
              process.stderr.write(`bench: transfer: ${path} ${direction} ${transferBytes / 2 ** 20} MiB\n`);
              const r = await runJob<TransferResult>(
                ctx,
                `transfer.${path}.${direction}`,
                {
                  kind: 'transfer',
                  host: ENTRY[path].addr.ip,
                  port: ENTRY[path].addr.port,
                  hostHeader: ENTRY[path].host,
                  direction,
                  bytes: transferBytes,
                  warmupBytes: Math.min(16 * 2 ** 20, transferBytes),
                  timeoutMs: 120_000,
                },
                pids,
                hopOf(mesh, path),
              );
              transfers.push({ path, direction, ...r });
              if (r.error) process.stderr.write(`bench: transfer ${path} ${direction}: ${r.error}\n`);
            }
          }
        } else {
          const w: RateWorkload = {
            ...RATE_WORKLOADS[name],
            durationS: durationOverride ?? RATE_WORKLOADS[name].defaultS,
          };
          // Rounds alternate the paths (floor, waypoint, baseline, haproxy, floor, ...) so slow drifts
          // of the machine's load fall on every path alike.
          for (const [round, path] of Array.from({ length: rounds }, (_, i) =>
            paths.map((p) => [i + 1, p] as const),
          ).flat()) {
            process.stderr.write(
              `bench: ${name}: ${path}${rounds > 1 ? ` (round ${round}/${rounds})` : ''} for ${w.durationS} s (+${warmupS} s warmup)\n`,
            );
            const redisBefore = path === 'waypoint' ? await redis?.commandsProcessed() : undefined;
            const r = await runJob<LoadResult>(
              ctx,
              `${name}.${path}${rounds > 1 ? `.${round}` : ''}`,
              {
                kind: 'load',
                host: ENTRY[path].addr.ip,
                port: ENTRY[path].addr.port,
                hostHeader: ENTRY[path].host,
                connections: w.connections,
                rate: w.rate,
                durationMs: w.durationS * 1000,
                warmupMs: warmupS * 1000,
                method: w.method,
                path: '/echo',
                headers: { 'content-type': 'application/octet-stream' },
                bodyBytes: w.requestBytes,
                timeoutMs: 10_000,
                drainMs: 5_000,
              },
              pids,
              hopOf(mesh, path),
            );
            loads.push({
              workload: name,
              path,
              ...(rounds > 1 ? { round } : {}),
              loadAvg: loadavg().map((x) => Math.round(x * 100) / 100),
              ...r,
            });
            if (redisBefore !== undefined) {
              // Evidence that the Global limit is in the path: Redis commands per request sent, the
              // warmup's requests (at the constant rate) included since the count covers them too.
              const redisAfter = await redis?.commandsProcessed();
              const n = redisAfter === undefined ? undefined : redisAfter - redisBefore;
              const sent = (r.result?.completed ?? 0) + w.rate * warmupS;
              const per = n !== undefined && sent > 0 ? n / sent : undefined;
              waypointNotes.push(
                `${name}: redis processed ${n ?? '?'} commands over the waypoint run (warmup included)${per === undefined ? '' : `, about ${per.toFixed(2)} per request (warmup + window)`}`,
              );
            }
            if (r.error) process.stderr.write(`bench: ${name} ${path}: ${r.error}\n`);
            // Right after the bench's own load generator, on the same backend, same settings.
            if (name === 'max' && path === 'direct' && !values['no-autocannon']) {
              process.stderr.write(`bench: max: autocannon on the direct path for ${w.durationS} s\n`);
              autocannon = await runAutocannon(ctx, w, w.durationS, warmupS);
            }
          }
        }
      } finally {
        for (const hop of [mesh.waypoint, mesh.baseline, mesh.haproxy]) {
          if (!hop) continue;
          const exited = hop.proc.exitCode;
          if (exited !== null)
            waypointNotes.push(`${name}: ${hop.name} exited with code ${exited} during the run`);
          const warnings = hop
            .stderrTail()
            .split('\n')
            .filter((l) => /"level":"(warn|error)"|\[(WARNING|ALERT)\]/.test(l));
          if (warnings.length > 0)
            waypointNotes.push(
              `${name}: ${hop.name} logged warnings/errors, e.g. ${warnings.at(-1)!.slice(0, 300)}`,
            );
        }
        await mesh.stop();
      }
    }
  } finally {
    clearTimeout(watchdog);
    await redis?.stop();
    sink?.close();
    await cleanup(certs);
    await baseline?.remove();
  }

  const report: BenchReport = {
    meta: {
      date: started,
      finished: new Date().toISOString(),
      command,
      node: process.version,
      machine: host,
      framing,
      scenario,
      git: git(),
      ...(baseline
        ? {
            baseline: {
              ref: baseline.ref,
              commit: baseline.commit,
              nodeFlags: [...baseline.nodeFlags],
              ...(baseline.lockNote ? { note: baseline.lockNote } : {}),
            },
          }
        : {}),
      rounds,
      pinning: pin.note,
      clockTicks: clockTicks(),
      sampleMs,
      warmupS,
      transferBytes,
      addresses: ADDR,
      workloads: Object.fromEntries(
        workloads
          .filter((w): w is RateWorkload['name'] => w !== 'transfer')
          .map((w) => [
            w,
            { ...RATE_WORKLOADS[w], durationS: durationOverride ?? RATE_WORKLOADS[w].defaultS },
          ]),
      ),
      logs: logDir,
    },
    loads,
    transfers,
    ...(autocannon ? { autocannon } : {}),
    waypointNotes,
    idleRss,
    quietNotes,
  };
  const text = printReport(report);
  process.stdout.write(text);
  const file = join(outDir, `bench-${stamp}.json`);
  const json = `${JSON.stringify(report, null, 2)}\n`;
  await writeFile(file, json);
  await writeFile(join(outDir, 'latest.json'), json);
  await writeFile(join(outDir, 'latest.md'), text);
  process.stderr.write(`bench: results in ${file} (and bench/out/latest.json, latest.md)\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`bench: ${err.message}\n`);
    killAllChildren();
    process.exit(1);
  },
);
