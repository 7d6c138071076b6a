// Figures derived from the raw runs (ratios to the tunnel floor, added latency, the issue's targets)
// and the Markdown tables the bench prints and bench/RESULTS.md quotes.
import { HOP, type PathName } from './lab.ts';
import type { AutocannonRun, LoadRun, RateWorkload, TransferRun, Window } from './run.ts';

export interface BenchReport {
  meta: {
    date: string;
    finished: string;
    command: string;
    node: string;
    machine: { nproc: number; cpuModel: string; memoryGiB: number; kernel: string };
    framing: 'length' | 'chunked';
    /** Extra config on the backend Service (--routes, --route-shape, --chain); absent in older runs. */
    scenario?: { routes: number; routeShape: 'exact' | 'prefix'; chain?: 'full-local' | 'full-redis' };
    git: string;
    /** --baseline: the other commit's waypoint (path "baseline"). */
    baseline?: { ref: string; commit: string; nodeFlags: string[]; note?: string };
    rounds?: number;
    pinning: string;
    clockTicks: number;
    sampleMs: number;
    warmupS: number;
    transferBytes: number;
    addresses: Record<string, { ip: string; port: number }>;
    workloads: Record<string, RateWorkload>;
    logs: string;
  };
  loads: LoadRun[];
  transfers: TransferRun[];
  autocannon?: AutocannonRun;
  waypointNotes: string[];
  /** Each L7 hop's VmRSS after start-up, before any load (per workload: a fresh set of processes). */
  idleRss?: { workload: string; hop: string; rssMB: number }[];
  quietNotes: string[];
  derived?: Derived;
}

/** The processes on the waypoint's core and on the other one when pinned. */
const CORE0 = ['backend', 'inbound', 'outbound', 'loadgen', 'bench', 'redis'];
const PROXIES: Record<PathName, readonly string[]> = {
  direct: [],
  floor: ['outbound', 'inbound'],
  waypoint: ['outbound', 'inbound', 'waypoint'],
  baseline: ['outbound', 'inbound', 'baseline'],
  // HAProxy's path has no inbound stand-in: the backend terminates HAProxy's TLS itself.
  haproxy: ['outbound', 'haproxy'],
};

export interface LoadFigures {
  workload: string;
  path: PathName;
  round?: number;
  loadAvg?: readonly number[];
  error?: string;
  /** The path's L7 hop (waypoint, baseline waypoint, HAProxy): CPU, memory, its event loop's delay. */
  hopCpuPer1k?: number;
  hopVcpu?: number;
  hopPeakRssMB?: number;
  hopHwmMB?: number;
  loopLagMaxMs?: number;
  loopLagP99Ms?: number;
  loopLagP999Ms?: number;
  /** This path's hop against HAProxy's, same workload and round. */
  vsHaproxy?: { hopCpuPer1k?: number; hopPeakRss?: number; addedP99?: number; addedP999?: number };
  rps?: number;
  targetRate?: number;
  completed?: number;
  errors?: number;
  non2xx?: number;
  unsent?: number;
  reconnects?: number;
  firstError?: string;
  p50?: number;
  p90?: number;
  p99?: number;
  p999?: number;
  max?: number;
  serviceP50?: number;
  serviceP99?: number;
  sendLagP50?: number;
  sendLagP99?: number;
  /** Waypoint CPU seconds per 1,000 requests (waypoint path only). */
  waypointCpuPer1k?: number;
  /** Waypoint CPU seconds per wall second. */
  waypointVcpu?: number;
  /** Largest VmRSS sample of the waypoint in the window, MB (10^6 bytes). */
  waypointPeakRssMB?: number;
  waypointHwmMB?: number;
  /** CPU seconds per 1,000 requests of the proxies on this path (stand-ins, plus the waypoint). */
  meshCpuPer1k?: number;
  /** Sum of the proxies' largest VmRSS samples, MB. */
  meshPeakRssMB?: number;
  standinsCpuPer1k?: number;
  /** CPU seconds per wall second of the core-0 processes (load generator, backend, stand-ins, bench). */
  core0Busy?: number;
  loadgenBusy?: number;
  /** CPUs busy on the machine minus this bench's processes (other people's work), per wall second. */
  otherLoad?: number;
  /** Kernel view of each CPU's busy fraction. */
  perCpuBusy?: number[];
  vsFloor?: {
    rps?: number;
    p50?: number;
    p90?: number;
    p99?: number;
    meshCpuPer1k?: number;
    meshPeakRss?: number;
    addedP50ms?: number;
    addedP99ms?: number;
    addedP999ms?: number;
  };
}

export interface TransferFigures {
  path: PathName;
  direction: string;
  error?: string;
  mbPerSecond?: number;
  seconds?: number;
  vsFloor?: number;
  waypointCpuSeconds?: number;
  waypointCpuPerGB?: number;
  waypointPeakRssMB?: number;
  meshCpuPerGB?: number;
  meshCpuVsFloor?: number;
  core0Busy?: number;
  otherLoad?: number;
}

export interface TargetCheck {
  target: string;
  workload: string;
  value: string;
  limit: string;
  met: boolean;
}

export interface Derived {
  loads: LoadFigures[];
  transfers: TransferFigures[];
  targets: TargetCheck[];
}

const MB = 1e6;
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

function proc(w: Window | undefined, name: string) {
  return w?.processes[name];
}

function loadFigures(r: LoadRun): LoadFigures {
  const f: LoadFigures = { workload: r.workload, path: r.path };
  if (r.round !== undefined) f.round = r.round;
  if (r.loadAvg) f.loadAvg = r.loadAvg;
  if (r.loopLag) {
    f.loopLagMaxMs = r.loopLag.maxMs;
    f.loopLagP99Ms = r.loopLag.p99Ms;
    f.loopLagP999Ms = r.loopLag.p999Ms;
  }
  if (r.error || !r.result) {
    f.error = r.error ?? 'no result';
    return f;
  }
  const x = r.result;
  const w = r.window;
  const statusNon2xx = sum(
    Object.entries(x.statuses)
      .filter(([s]) => !s.startsWith('2'))
      .map(([, n]) => n),
  );
  Object.assign(f, {
    rps: x.rps,
    targetRate: x.targetRate,
    completed: x.completed,
    errors: x.errors.reset + x.errors.timeout + x.errors.protocol,
    non2xx: statusNon2xx,
    unsent: x.unsent,
    reconnects: x.reconnects,
    ...(x.firstError !== undefined ? { firstError: x.firstError } : {}),
    ...(x.latency.count > 0
      ? {
          p50: x.latency.p50,
          p90: x.latency.p90,
          p99: x.latency.p99,
          p999: x.latency.p999,
          max: x.latency.max,
          serviceP50: x.service.p50,
          serviceP99: x.service.p99,
          sendLagP50: x.sendLag.p50,
          sendLagP99: x.sendLag.p99,
        }
      : {}),
  });
  if (w) {
    const per1k = (cpu: number): number | undefined =>
      x.completed > 0 ? (cpu / x.completed) * 1000 : undefined;
    const set = <K extends keyof LoadFigures>(k: K, v: LoadFigures[K] | undefined): void => {
      if (v !== undefined) f[k] = v;
    };
    const wp = proc(w, 'waypoint');
    if (r.path === 'waypoint' && wp) {
      set('waypointCpuPer1k', per1k(wp.cpuSeconds));
      f.waypointVcpu = wp.cpuSeconds / w.wallSeconds;
      f.waypointPeakRssMB = wp.peakRssBytes / MB;
      f.waypointHwmMB = wp.hwmBytes / MB;
    }
    const hop = HOP[r.path] ? proc(w, HOP[r.path]!) : undefined;
    if (hop) {
      set('hopCpuPer1k', per1k(hop.cpuSeconds));
      f.hopVcpu = hop.cpuSeconds / w.wallSeconds;
      f.hopPeakRssMB = hop.peakRssBytes / MB;
      f.hopHwmMB = hop.hwmBytes / MB;
    }
    const proxies = PROXIES[r.path];
    if (proxies.length > 0) {
      set('meshCpuPer1k', per1k(sum(proxies.map((p) => proc(w, p)?.cpuSeconds ?? 0))));
      f.meshPeakRssMB = sum(proxies.map((p) => proc(w, p)?.peakRssBytes ?? 0)) / MB;
      set('standinsCpuPer1k', per1k(sum(['outbound', 'inbound'].map((p) => proc(w, p)?.cpuSeconds ?? 0))));
    }
    f.core0Busy = sum(CORE0.map((p) => proc(w, p)?.cpuSeconds ?? 0)) / w.wallSeconds;
    f.loadgenBusy = (proc(w, 'loadgen')?.cpuSeconds ?? 0) / w.wallSeconds;
    set('otherLoad', otherLoad(w));
    f.perCpuBusy = w.system?.perCpuBusy ?? [];
  }
  return f;
}

/** Machine-wide busy CPUs minus the bench's own processes. */
function otherLoad(w: Window): number | undefined {
  const busy = w.system?.busyCpus;
  if (busy === undefined || !Number.isFinite(busy)) return undefined;
  const ours = sum(Object.values(w.processes).map((p) => (Number.isFinite(p.cpuSeconds) ? p.cpuSeconds : 0)));
  return Math.max(0, busy - ours / w.wallSeconds);
}

const ratio = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined || b === undefined || b === 0 ? undefined : a / b;

export function analyze(report: BenchReport): Derived {
  const loads = report.loads.map(loadFigures);
  // The same workload's floor (and HAProxy) of the same round when there is one: ratios from one round.
  const peer = (f: LoadFigures, path: PathName): LoadFigures | undefined => {
    const all = loads.filter((g) => g.workload === f.workload && g.path === path && !g.error);
    return all.find((g) => g.round === f.round) ?? all[0];
  };
  for (const f of loads) {
    const floor = peer(f, 'floor');
    if (!floor || f.error) continue;
    f.vsFloor = {
      ...(ratio(f.rps, floor.rps) !== undefined ? { rps: ratio(f.rps, floor.rps)! } : {}),
      ...(ratio(f.p50, floor.p50) !== undefined ? { p50: ratio(f.p50, floor.p50)! } : {}),
      ...(ratio(f.p90, floor.p90) !== undefined ? { p90: ratio(f.p90, floor.p90)! } : {}),
      ...(ratio(f.p99, floor.p99) !== undefined ? { p99: ratio(f.p99, floor.p99)! } : {}),
      ...(ratio(f.meshCpuPer1k, floor.meshCpuPer1k) !== undefined
        ? { meshCpuPer1k: ratio(f.meshCpuPer1k, floor.meshCpuPer1k)! }
        : {}),
      ...(ratio(f.meshPeakRssMB, floor.meshPeakRssMB) !== undefined
        ? { meshPeakRss: ratio(f.meshPeakRssMB, floor.meshPeakRssMB)! }
        : {}),
      ...(f.p50 !== undefined && floor.p50 !== undefined ? { addedP50ms: f.p50 - floor.p50 } : {}),
      ...(f.p99 !== undefined && floor.p99 !== undefined ? { addedP99ms: f.p99 - floor.p99 } : {}),
      ...(f.p999 !== undefined && floor.p999 !== undefined ? { addedP999ms: f.p999 - floor.p999 } : {}),
    };
  }
  for (const f of loads) {
    const hp = peer(f, 'haproxy');
    if (!hp || f.error || f.hopCpuPer1k === undefined) continue;
    const v: NonNullable<LoadFigures['vsHaproxy']> = {};
    const put = (k: keyof typeof v, x: number | undefined): void => {
      if (x !== undefined) v[k] = x;
    };
    put('hopCpuPer1k', ratio(f.hopCpuPer1k, hp.hopCpuPer1k));
    put('hopPeakRss', ratio(f.hopPeakRssMB, hp.hopPeakRssMB));
    put('addedP99', ratio(f.vsFloor?.addedP99ms, hp.vsFloor?.addedP99ms));
    put('addedP999', ratio(f.vsFloor?.addedP999ms, hp.vsFloor?.addedP999ms));
    f.vsHaproxy = v;
  }

  const transfers: TransferFigures[] = report.transfers.map((t) => {
    const f: TransferFigures = { path: t.path, direction: t.direction };
    if (t.error || !t.result) {
      f.error = t.error ?? 'no result';
      return f;
    }
    const gb = t.result.bytes / 1e9;
    f.mbPerSecond = t.result.mbPerSecond;
    f.seconds = t.result.seconds;
    const w = t.window;
    const wp = proc(w, 'waypoint');
    if (t.path === 'waypoint' && wp) {
      f.waypointCpuSeconds = wp.cpuSeconds;
      f.waypointCpuPerGB = wp.cpuSeconds / gb;
      f.waypointPeakRssMB = wp.peakRssBytes / MB;
    }
    if (w && PROXIES[t.path].length > 0)
      f.meshCpuPerGB = sum(PROXIES[t.path].map((p) => proc(w, p)?.cpuSeconds ?? 0)) / gb;
    if (w) {
      f.core0Busy = sum(CORE0.map((p) => proc(w, p)?.cpuSeconds ?? 0)) / w.wallSeconds;
      f.otherLoad = otherLoad(w);
    }
    return f;
  });
  for (const f of transfers) {
    const floor = transfers.find((g) => g.path === 'floor' && g.direction === f.direction && !g.error);
    if (!floor || f.error) continue;
    const r = ratio(f.mbPerSecond, floor.mbPerSecond);
    if (r !== undefined) f.vsFloor = r;
    const c = ratio(f.meshCpuPerGB, floor.meshCpuPerGB);
    if (c !== undefined) f.meshCpuVsFloor = c;
  }

  const targets = rateTargets(loads);
  for (const t of transfers) {
    if (t.path !== 'waypoint' || t.mbPerSecond === undefined) continue;
    targets.push({
      target: `one tunnel, ${t.direction}`,
      workload: 'transfer',
      value: `${fix(t.mbPerSecond, 0)} MB/s`,
      limit: '≥ 500 MB/s',
      met: t.mbPerSecond >= 500,
    });
  }
  return { loads, transfers, targets };
}

/** The median of the defined values (the figure of a path over its rounds). */
export function median(xs: readonly (number | undefined)[]): number | undefined {
  const v = xs.filter((x): x is number => x !== undefined && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1]! + v[m]!) / 2;
}

/** Issue 13's targets for the waypoint path, on the median over its rounds. */
function rateTargets(loads: readonly LoadFigures[]): TargetCheck[] {
  const targets: TargetCheck[] = [];
  let kept = true;
  const check = (
    workload: string,
    target: string,
    v: number | undefined,
    limit: string,
    met: (x: number) => boolean,
    show: (x: number) => string,
  ): void => {
    if (v !== undefined)
      targets.push({
        target,
        workload,
        value: kept ? show(v) : `${show(v)} (rate not kept)`,
        limit,
        met: kept && met(v),
      });
  };
  for (const wl of ['istio', 'seed', 'max']) {
    const rows = loads.filter(
      (f) => f.workload === wl && f.path === 'waypoint' && !f.error && (f.completed ?? 0) > 0,
    );
    if (rows.length === 0) continue;
    const med = (k: (f: LoadFigures) => number | undefined): number | undefined => median(rows.map(k));
    // A path that did not keep the rate did less work: its CPU, memory and latency meet nothing.
    const failed = rows.reduce((a, f) => a + (f.errors ?? 0) + (f.non2xx ?? 0) + (f.unsent ?? 0), 0);
    kept = wl === 'max' || (failed === 0 && (med((f) => f.rps) ?? 0) >= (rows[0]!.targetRate ?? 0) * 0.99);
    const n = rows.length > 1 ? ` (median of ${rows.length})` : '';
    if (wl === 'max') {
      check(
        wl,
        `closed-loop maximum ×floor${n}`,
        med((f) => f.vsFloor?.rps),
        '≥ ×0.5',
        (x) => x >= 0.5,
        (x) => `×${x.toFixed(2)}`,
      );
      continue;
    }
    check(
      wl,
      `added p99 over the floor${n}`,
      med((f) => f.vsFloor?.addedP99ms),
      '≤ +2 ms',
      (x) => x <= 2,
      (x) => `${signed(x)} ms`,
    );
    check(
      wl,
      `added p99.9 over the floor${n}`,
      med((f) => f.vsFloor?.addedP999ms),
      '≤ +10 ms',
      (x) => x <= 10,
      (x) => `${signed(x)} ms`,
    );
    check(
      wl,
      `event loop's worst lag${n}`,
      med((f) => f.loopLagMaxMs),
      '≤ 10 ms',
      (x) => x <= 10,
      (x) => `${fix(x, 1)} ms`,
    );
    check(
      wl,
      `waypoint CPU at 1000 req/s${n}`,
      med((f) => f.waypointVcpu),
      '≤ 0.30 vCPU',
      (x) => x <= 0.3,
      (x) => `${fix(x, 3)} vCPU`,
    );
    check(
      wl,
      `waypoint RSS (max VmRSS sample)${n}`,
      med((f) => f.waypointPeakRssMB),
      '≤ 120 MB',
      (x) => x <= 120,
      (x) => `${fix(x, 1)} MB`,
    );
    kept = true; // the rate target itself says what it is
    check(
      wl,
      'waypoint path keeps the rate, no errors',
      med((f) => f.rps),
      `${rows[0]!.targetRate} req/s, 0 failed`,
      (x) => x >= (rows[0]!.targetRate ?? 0) * 0.99 && failed === 0,
      (x) => `${fix(x, 0)} req/s, ${failed} failed`,
    );
  }
  return targets;
}

function label(f: LoadFigures): string {
  return f.round === undefined ? f.path : `${f.path} r${f.round}`;
}

/** The L7 hop of each path side by side (waypoint, baseline, HAProxy), and before/after medians. */
function hopTables(
  loads: readonly LoadFigures[],
  m: BenchReport['meta'],
  idle: NonNullable<BenchReport['idleRss']>,
): string[] {
  const rows = loads.filter((f) => !f.error && f.hopCpuPer1k !== undefined);
  if (rows.length === 0) return [];
  const out = [
    '## The L7 hop of each path (waypoint, baseline waypoint, HAProxy), pinned to the same core',
    '',
    table(
      [
        'workload',
        'path',
        'CPU-s/1k req',
        'vCPU',
        'idle RSS MB',
        'RSS MB',
        'VmHWM MB',
        'loop lag max ms',
        'loop lag p99 ms',
        'loop lag p99.9 ms',
        'added p99 ms',
        'added p99.9 ms',
        'CPU ×haproxy',
        'RSS ×haproxy',
        'added p99 ×haproxy',
        'load avg 1/5/15',
      ],
      rows.map((f) => [
        f.workload,
        label(f),
        fix(f.hopCpuPer1k, 3),
        fix(f.hopVcpu, 3),
        fix(idle.find((x) => x.workload === f.workload && x.hop === f.path)?.rssMB, 1),
        fix(f.hopPeakRssMB, 1),
        fix(f.hopHwmMB, 1),
        fix(f.loopLagMaxMs, 1),
        fix(f.loopLagP99Ms, 1),
        fix(f.loopLagP999Ms, 1),
        signed(f.vsFloor?.addedP99ms),
        signed(f.vsFloor?.addedP999ms),
        times(f.vsHaproxy?.hopCpuPer1k),
        times(f.vsHaproxy?.hopPeakRss),
        times(f.vsHaproxy?.addedP99),
        f.loadAvg ? f.loadAvg.map((x) => x.toFixed(1)).join(' / ') : '—',
      ]),
    ),
    '',
    "HAProxy's path: plain HTTP/1.1 from the load generator → the outbound stand-in's bridge → HTTP/2 over mutual TLS (the bench client's certificate) → HAProxy (one thread, the waypoint's certificate, client certificate required) → HTTP/1.1 over mutual TLS → the backend's TLS port. No HBONE, no CONNECT tunnel: see bench/README.md for what compares. Loop lag: the process's own monitorEventLoopDelay at --loop-lag-ms resolution, default 2 ms (bench/loop-lag.ts; none for HAProxy). ×haproxy = this hop / HAProxy's, same workload and round.",
    '',
  ];
  if (!m.baseline) return out;
  const figures: [string, (f: LoadFigures) => number | undefined, (x: number | undefined) => string][] = [
    ['CPU-s/1k req', (f) => f.hopCpuPer1k, (x) => fix(x, 3)],
    ['RSS MB', (f) => f.hopPeakRssMB, (x) => fix(x, 1)],
    ['added p50 ms', (f) => f.vsFloor?.addedP50ms, signed],
    ['added p99 ms', (f) => f.vsFloor?.addedP99ms, signed],
    ['added p99.9 ms', (f) => f.vsFloor?.addedP999ms, signed],
    ['loop lag max ms', (f) => f.loopLagMaxMs, (x) => fix(x, 1)],
    ['req/s', (f) => f.rps, (x) => fix(x, 0)],
  ];
  const ba: string[][] = [];
  for (const wl of [...new Set(rows.map((f) => f.workload))]) {
    const of = (path: PathName) => rows.filter((f) => f.workload === wl && f.path === path);
    const before = of('baseline');
    const after = of('waypoint');
    if (before.length === 0 || after.length === 0) continue;
    for (const [name, get, show] of figures) {
      const b = median(before.map(get));
      const a = median(after.map(get));
      ba.push([wl, name, show(b), show(a), times(ratio(a, b)), `${before.length} / ${after.length}`]);
    }
    const idleOf = (hop: string) => idle.find((x) => x.workload === wl && x.hop === hop)?.rssMB;
    const [ib, ia] = [idleOf('baseline'), idleOf('waypoint')];
    ba.push([wl, 'idle RSS MB', fix(ib, 1), fix(ia, 1), times(ratio(ia, ib)), '1 / 1']);
  }
  out.push(
    `## Before (${m.baseline.ref}, ${m.baseline.commit}) and after (this tree), medians over the rounds`,
    '',
    table(['workload', 'figure', 'before', 'after', 'after ×before', 'rounds'], ba),
    '',
  );
  return out;
}

function scenarioText(s: BenchReport['meta']['scenario']): string {
  if (!s) return 'none recorded';
  const parts: string[] = [];
  if (s.routes > 0)
    parts.push(
      `${s.routes} HTTPRoute rule(s), shape ${s.routeShape} (${s.routes - 1} never match, PathPrefix "/" last)`,
    );
  if (s.chain)
    parts.push(
      `resilience chain ${s.chain} (AuthorizationPolicy ALLOW, HTTPRoute timeout + retry, DestinationRule pool + outlier detection, ${s.chain === 'full-redis' ? 'Global (Redis)' : 'Local'} rate limit that never trips)`,
    );
  return parts.length > 0 ? parts.join('; ') : 'none (bare data path)';
}

function fix(n: number | undefined, digits: number): string {
  return n === undefined || !Number.isFinite(n) ? '—' : n.toFixed(digits);
}

/** Milliseconds with sensible precision. */
function ms(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '—';
  return n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0);
}

function signed(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '—';
  return `${n >= 0 ? '+' : ''}${n.toFixed(2)}`;
}

function times(n: number | undefined): string {
  return n === undefined || !Number.isFinite(n) ? '—' : `×${n.toFixed(2)}`;
}

function pct(n: number | undefined): string {
  return n === undefined || !Number.isFinite(n) ? '—' : `${(n * 100).toFixed(0)}%`;
}

export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  // The layout biome's Markdown formatter keeps, so the tables paste into RESULTS.md unchanged.
  const rule = `| ${widths.map((w, i) => (i < 2 ? `:${'-'.repeat(Math.max(2, w) - 1)}` : `${'-'.repeat(Math.max(2, w) - 1)}:`)).join(' | ')} |`;
  return [line(headers), rule, ...rows.map(line)].join('\n');
}

export function printReport(report: BenchReport): string {
  const d = analyze(report);
  report.derived = d;
  const m = report.meta;
  const out: string[] = [];
  out.push(
    `# node-waypoint bench — ${m.date}`,
    '',
    `- command: \`${m.command}\` (started ${m.date}, finished ${m.finished})`,
    `- machine: ${m.machine.nproc} CPUs (${m.machine.cpuModel}), ${m.machine.memoryGiB.toFixed(1)} GiB RAM, Linux ${m.machine.kernel}; Node ${m.node}; git ${m.git}`,
    `- pinning: ${m.pinning}`,
    ...(m.baseline
      ? [
          `- baseline: path "baseline" is the waypoint of ${m.baseline.ref} (${m.baseline.commit}), V8 flags \`${m.baseline.nodeFlags.join(' ')}\`${m.baseline.note ? `; ${m.baseline.note}` : ''}`,
        ]
      : []),
    ...((m.rounds ?? 1) > 1 ? [`- ${m.rounds} rounds, paths alternating within each; "rN" = round N`] : []),
    `- backend bodies: ${m.framing === 'chunked' ? 'chunked (no content-length; --framing chunked)' : 'content-length'}`,
    `- config on the backend Service: ${scenarioText(m.scenario)}`,
    `- latency from the scheduled send time (coordinated-omission corrected) for the 1000 req/s workloads, from the send for max rate; ${m.warmupS} s warmup per run not recorded; CPU from /proc/PID/stat (CLK_TCK ${m.clockTicks}), RSS = largest VmRSS sample every ${m.sampleMs} ms; MB = 10^6 bytes`,
    '',
  );

  const failing = d.loads.filter((f) => f.error || (f.errors ?? 0) + (f.non2xx ?? 0) + (f.unsent ?? 0) > 0);
  if (failing.length > 0)
    out.push(
      `**RUNS WITH FAILURES — their figures are not the cost of answering**: ${failing
        .map((f) =>
          f.error
            ? `${f.workload}/${f.path} did not run`
            : `${f.workload}/${f.path} ${f.errors ?? 0} errors, ${f.non2xx ?? 0} non-2xx, ${f.unsent ?? 0} unsent`,
        )
        .join('; ')} (see Failures)`,
      '',
    );
  const wlNames = [...new Set(d.loads.map((f) => f.workload))];
  if (wlNames.length > 0) {
    out.push('## Latency and throughput', '');
    for (const wl of wlNames) {
      const w = m.workloads[wl];
      if (w) out.push(`- ${wl}: ${w.title}; ${w.durationS} s measured`);
    }
    out.push('');
    out.push(
      table(
        [
          'workload',
          'path',
          'req/s',
          'p50 ms',
          'p90 ms',
          'p99 ms',
          'p99.9 ms',
          'failed',
          'req/s ×floor',
          'p50 ×floor',
          'p90 ×floor',
          'p99 ×floor',
        ],
        d.loads.map((f) =>
          f.error
            ? [f.workload, f.path, 'failed (see Failures)', '', '', '', '', '', '', '', '', '']
            : [
                f.workload,
                label(f),
                fix(f.rps, 0),
                ms(f.p50),
                ms(f.p90),
                ms(f.p99),
                ms(f.p999),
                String((f.errors ?? 0) + (f.non2xx ?? 0) + (f.unsent ?? 0)),
                times(f.vsFloor?.rps),
                times(f.vsFloor?.p50),
                times(f.vsFloor?.p90),
                times(f.vsFloor?.p99),
              ],
        ),
      ),
      '',
      '"failed" = errors + non-2xx answers + slots never sent (constant rate). ×floor = this path / tunnel floor.',
      '',
      '## Added latency over the tunnel floor',
      '',
      table(
        ['workload', 'path', 'p50 +ms', 'p99 +ms', 'p99.9 +ms'],
        d.loads
          .filter((f) => f.path !== 'floor' && f.vsFloor)
          .map((f) => [
            f.workload,
            label(f),
            signed(f.vsFloor!.addedP50ms),
            signed(f.vsFloor!.addedP99ms),
            signed(f.vsFloor!.addedP999ms),
          ]),
      ),
      '',
      '## CPU and memory',
      '',
      table(
        [
          'workload',
          'path',
          'waypoint CPU-s/1k req',
          'waypoint vCPU',
          'waypoint RSS MB',
          'waypoint VmHWM MB',
          'proxies CPU-s/1k req',
          'proxies CPU ×floor',
          'proxies RSS MB',
          'proxies RSS ×floor',
        ],
        d.loads
          .filter((f) => !f.error && f.path !== 'direct')
          .map((f) => [
            f.workload,
            label(f),
            fix(f.waypointCpuPer1k, 3),
            fix(f.waypointVcpu, 3),
            fix(f.waypointPeakRssMB, 1),
            fix(f.waypointHwmMB, 1),
            fix(f.meshCpuPer1k, 3),
            times(f.vsFloor?.meshCpuPer1k),
            fix(f.meshPeakRssMB, 1),
            times(f.vsFloor?.meshPeakRss),
          ]),
      ),
      '',
      '"proxies" = the processes the path adds between client and backend: floor = outbound + inbound stand-in; waypoint = outbound + inbound stand-in + waypoint. At 1000 req/s, CPU-s per 1k requests equals vCPU.',
      '',
      ...hopTables(d.loads, m, report.idleRss ?? []),
      '## Load generator health',
      '',
      table(
        [
          'workload',
          'path',
          'send lag p50 ms',
          'send lag p99 ms',
          'service p50 ms',
          'service p99 ms',
          'reconnects',
          'load generator CPU',
          'core 0 busy',
          'CPUs busy (cpu0 / cpu1)',
          'other load',
        ],
        d.loads
          .filter((f) => !f.error)
          .map((f) => [
            f.workload,
            label(f),
            ms(f.sendLagP50),
            ms(f.sendLagP99),
            ms(f.serviceP50),
            ms(f.serviceP99),
            String(f.reconnects ?? 0),
            pct(f.loadgenBusy),
            pct(f.core0Busy),
            f.perCpuBusy && f.perCpuBusy.length > 0 ? f.perCpuBusy.map((x) => pct(x)).join(' / ') : '—',
            f.otherLoad === undefined ? '—' : `${f.otherLoad.toFixed(2)} CPU`,
          ]),
      ),
      '',
      'send lag = actual send − scheduled send (timer granularity; large values mean the load generator or core 0 fell behind). service = latency from the actual send (no correction). core 0 busy = CPU of load generator + backend + stand-ins + orchestrator per wall second (100% = core 0 saturated). CPUs busy = each CPU as /proc/stat sees it. other load = CPUs busy on the machine minus the processes of this bench (other work on the machine; anything above ~0.05 CPU makes the figures noisier).',
      '',
    );
  }

  if (report.autocannon || d.loads.some((f) => f.workload === 'max' && f.path === 'direct')) {
    const ours = d.loads.find((f) => f.workload === 'max' && f.path === 'direct' && !f.error);
    const ac = report.autocannon;
    out.push('## Load generator vs autocannon (direct path, max rate)', '');
    out.push(
      table(
        ['tool', 'connections', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'failed', 'CPU µs/request'],
        [
          ...(ours
            ? [
                [
                  'bench loadgen',
                  String(report.meta.workloads['max']?.connections ?? ''),
                  fix(ours.rps, 0),
                  ms(ours.p50),
                  ms(ours.p90),
                  ms(ours.p99),
                  String((ours.errors ?? 0) + (ours.non2xx ?? 0)),
                  ours.loadgenBusy !== undefined && ours.rps
                    ? ((ours.loadgenBusy / ours.rps) * 1e6).toFixed(1)
                    : '—',
                ],
              ]
            : []),
          ...(ac
            ? [
                ac.error
                  ? [
                      'autocannon',
                      String(ac.connections),
                      `failed: ${ac.error.slice(0, 60)}`,
                      '',
                      '',
                      '',
                      '',
                      '',
                    ]
                  : [
                      'autocannon',
                      String(ac.connections),
                      fix(ac.rps, 0),
                      ms(ac.latency?.p50),
                      ms(ac.latency?.p90),
                      ms(ac.latency?.p99),
                      String((ac.errors ?? 0) + (ac.non2xx ?? 0)),
                      fix(ac.cpuMicrosPerRequest, 1),
                    ],
              ]
            : []),
        ],
      ),
      '',
      'Both run on core 0 next to the backend, autocannon right after the bench load generator, same connections, payload and duration. autocannon records latency in whole milliseconds, so its sub-millisecond percentiles read 0 or 1; its CPU per request includes its start-up and warmup.',
      '',
    );
  }

  if (d.transfers.length > 0) {
    out.push(
      `## One ${(m.transferBytes / 2 ** 20).toFixed(0)} MiB transfer through a single connection/tunnel`,
      '',
    );
    out.push(
      table(
        [
          'path',
          'direction',
          'MB/s',
          'seconds',
          'MB/s ×floor',
          'waypoint CPU-s',
          'waypoint CPU-s/GB',
          'waypoint RSS MB',
          'proxies CPU-s/GB',
          'proxies CPU ×floor',
        ],
        d.transfers.map((t) =>
          t.error
            ? [t.path, t.direction, 'failed (see Failures)', '', '', '', '', '', '', '']
            : [
                t.path,
                t.direction,
                fix(t.mbPerSecond, 0),
                fix(t.seconds, 2),
                times(t.vsFloor),
                fix(t.waypointCpuSeconds, 2),
                fix(t.waypointCpuPerGB, 2),
                fix(t.waypointPeakRssMB, 1),
                fix(t.meshCpuPerGB, 2),
                times(t.meshCpuVsFloor),
              ],
        ),
      ),
      '',
    );
  }

  const rt = [
    ...report.loads
      .filter((r) => r.runtime)
      .map(
        (r) => [r.workload, r.round === undefined ? r.path : `${r.path} r${r.round}`, r.runtime!] as const,
      ),
    ...report.transfers
      .filter((t) => t.runtime)
      .map((t) => [`transfer ${t.direction}`, t.path, t.runtime!] as const),
  ];
  if (rt.length > 0) {
    out.push(
      '## Waypoint runtime over each waypoint run (from its own /stats/prometheus)',
      '',
      table(
        [
          'run',
          'path',
          'event-loop lag max ms',
          'event-loop lag p99 ms',
          'minor GCs',
          'minor GC ms',
          'major GCs',
          'major GC ms',
          'heap used MB (end)',
        ],
        rt.map(([name, path, x]) => [
          name,
          path,
          fix(x.eventLoopLagMaxMs, 1),
          fix(x.eventLoopLagP99Ms, 1),
          fix(x.gcMinorCount, 0),
          fix(x.gcMinorMs, 0),
          fix(x.gcMajorCount, 0),
          fix(x.gcMajorMs, 0),
          fix(x.heapUsedMB, 1),
        ]),
      ),
      '',
      'prom-client samples the event-loop delay with a 10 ms resolution (so about 10 ms is the floor) and resets it on every scrape; the bench scrapes at the start and the end of each measured window.',
      '',
    );
  }

  if (d.targets.length > 0) {
    out.push('## Targets (from the issue)', '');
    out.push(
      table(
        ['workload', 'target', 'value', 'limit', 'result'],
        d.targets.map((t) => [t.workload, t.target, t.value, t.limit, t.met ? 'met' : 'NOT MET']),
      ),
      '',
    );
  }
  const failures = [
    ...d.loads.filter((f) => f.error).map((f) => `- ${f.workload} / ${f.path}: did not run: ${f.error}`),
    ...d.loads
      .filter((f) => f.firstError)
      .map(
        (f) =>
          `- ${f.workload} / ${f.path}: ${(f.errors ?? 0) + (f.non2xx ?? 0)} failed of ${(f.completed ?? 0) + (f.errors ?? 0)}, ${f.reconnects} reconnects; first: ${f.firstError}`,
      ),
    ...d.transfers.filter((t) => t.error).map((t) => `- transfer / ${t.path} ${t.direction}: ${t.error}`),
  ];
  if (failures.length > 0) out.push('## Failures (first one seen per run)', '', ...failures, '');
  if (report.quietNotes.length > 0) {
    out.push('## Machine load before each workload', '', ...report.quietNotes.map((n) => `- ${n}`), '');
  }
  if (report.waypointNotes.length > 0) {
    out.push('## Waypoint notes', '', ...report.waypointNotes.map((n) => `- ${n}`), '');
  }
  return `${out.join('\n')}\n`;
}
