// Figures derived from the raw runs (ratios to the tunnel floor, added latency, the issue's targets)
// and the Markdown tables the bench prints and bench/RESULTS.md quotes.
import type { PathName } from './lab.ts';
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
  quietNotes: string[];
  derived?: Derived;
}

/** The processes on the waypoint's core and on the other one when pinned. */
const CORE0 = ['backend', 'inbound', 'outbound', 'loadgen', 'bench', 'redis'];
const PROXIES: Record<PathName, readonly string[]> = {
  direct: [],
  floor: ['outbound', 'inbound'],
  waypoint: ['outbound', 'inbound', 'waypoint'],
};

export interface LoadFigures {
  workload: string;
  path: PathName;
  error?: string;
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
  for (const f of loads) {
    const floor = loads.find((g) => g.workload === f.workload && g.path === 'floor' && !g.error);
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
    };
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

  const targets: TargetCheck[] = [];
  for (const wl of ['istio', 'seed']) {
    const wp = loads.find((f) => f.workload === wl && f.path === 'waypoint' && !f.error);
    if (!wp) continue;
    // Resource and latency targets only mean something when the path answered.
    const answered = (wp.completed ?? 0) > 0 && wp.p50 !== undefined;
    if (answered && wp.waypointVcpu !== undefined)
      targets.push({
        target: 'waypoint CPU at 1000 req/s',
        workload: wl,
        value: `${fix(wp.waypointVcpu, 3)} vCPU`,
        limit: '≤ 0.5 vCPU',
        met: wp.waypointVcpu <= 0.5,
      });
    if (answered && wp.waypointPeakRssMB !== undefined)
      targets.push({
        target: 'waypoint RSS (max VmRSS sample)',
        workload: wl,
        value: `${fix(wp.waypointPeakRssMB, 1)} MB (VmHWM ${fix(wp.waypointHwmMB ?? 0, 1)} MB)`,
        limit: '≤ 150 MB',
        met: wp.waypointPeakRssMB <= 150,
      });
    if (wp.vsFloor?.addedP50ms !== undefined)
      targets.push({
        target: 'added p50 over the tunnel floor',
        workload: wl,
        value: `${signed(wp.vsFloor.addedP50ms)} ms`,
        limit: '≤ +0.5 ms',
        met: wp.vsFloor.addedP50ms <= 0.5,
      });
    if (wp.vsFloor?.addedP99ms !== undefined)
      targets.push({
        target: 'added p99 over the tunnel floor',
        workload: wl,
        value: `${signed(wp.vsFloor.addedP99ms)} ms`,
        limit: '≤ +2 ms',
        met: wp.vsFloor.addedP99ms <= 2,
      });
    if (wp.rps !== undefined && wp.targetRate)
      targets.push({
        target: 'waypoint path keeps the rate, no errors',
        workload: wl,
        value: `${fix(wp.rps, 0)} req/s, ${wp.unsent} unsent, ${(wp.errors ?? 0) + (wp.non2xx ?? 0)} failed`,
        limit: `${wp.targetRate} req/s, 0 failed`,
        met: wp.rps >= wp.targetRate * 0.99 && wp.unsent === 0 && wp.errors === 0 && wp.non2xx === 0,
      });
  }
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
                f.path,
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
        ['workload', 'path', 'p50 +ms', 'p99 +ms'],
        d.loads
          .filter((f) => f.path !== 'floor' && f.vsFloor)
          .map((f) => [f.workload, f.path, signed(f.vsFloor!.addedP50ms), signed(f.vsFloor!.addedP99ms)]),
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
            f.path,
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
            f.path,
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
    ...report.loads.filter((r) => r.runtime).map((r) => [r.workload, r.runtime!] as const),
    ...report.transfers.filter((t) => t.runtime).map((t) => [`transfer ${t.direction}`, t.runtime!] as const),
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
        rt.map(([name, x]) => [
          name,
          'waypoint',
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
