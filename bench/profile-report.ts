// bench/profile.ts's printout (Markdown): the window's figures, CPU by category and by group in
// CPU-s per 1000 requests, the top functions, memory by component at idle and under load, and the
// heap profile's bytes per request by category. Pure: bench/profile-summary.test.ts renders a
// synthetic run.
import { type AgentSnapshot, memoryBreakdown, type SmapsSummary } from './profile-memory.ts';
import {
  type CpuProfile,
  type FunctionRow,
  type Group,
  type HeapProfileNode,
  summarizeCpuProfile,
  summarizeHeapProfile,
} from './profile-summary.ts';

export interface WindowFigures {
  readonly requests: number;
  /** Answered in the warmup before the window (a heap profile spans warmup and window). */
  readonly warmupRequests: number;
  readonly ok: number;
  readonly unsent: number;
  readonly seconds: number;
  /** utime+stime of every thread of the waypoint over the window. */
  readonly processCpuS: number;
  /** utime+stime of its main thread (the one the CPU profile samples). */
  readonly mainThreadCpuS: number;
  readonly peakRssMB: number;
  readonly p99Ms: number;
  readonly memory: { smaps: SmapsSummary; agent: AgentSnapshot };
  readonly loadAvg: readonly number[];
  /** The waypoint's monotonic clock (µs) when the window opened: the CPU profile is cut there. */
  readonly markUs: number;
}

export interface ProfileRun {
  readonly date: string;
  readonly command: string;
  readonly node: string;
  readonly pinning: string;
  /** The repository's absolute path, with a trailing slash. */
  readonly root: string;
  readonly nodeArgs: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly idle: { smaps: SmapsSummary; agent: AgentSnapshot; rssMB: number };
  /** The same window without any profiler: the CPU and latency figures to quote. */
  readonly plain: WindowFigures;
  readonly cpu: WindowFigures & { profile: CpuProfile };
  readonly heap?: WindowFigures & { profile: { head: HeapProfileNode } };
  /** Linux perf over the window without a profiler, by library (bench/profile-perf.ts). */
  readonly perf?: ReadonlyArray<{ group: string; percent: number }>;
  readonly top: number;
}

const GROUP_NAMES: Record<Group, string> = {
  node: "Node's machinery (TLS, HTTP/2, HTTP/1, streams, undici, native, (program))",
  gc: 'garbage collection',
  ours: 'our code (src/, filters/, config/, bin/)',
  deps: 'other npm dependencies',
  other: 'other',
  idle: 'idle',
};

function table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const align = headers.map((_, i) => (i === 0 ? ':--' : '--:'));
  return [headers, align, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

/** The window kept the istio rate: at most 1% of its slots unsent or failed. */
export function keptRate(w: WindowFigures): boolean {
  return w.unsent + (w.requests - w.ok) <= 0.01 * (w.requests + w.unsent);
}

function windowLine(w: WindowFigures): string {
  const per1k = (s: number): string => ((s / Math.max(1, w.requests)) * 1000).toFixed(3);
  return (
    `${w.requests} requests in ${w.seconds.toFixed(1)} s (${w.ok} 2xx, ${w.unsent} unsent), p99 ${w.p99Ms.toFixed(2)} ms; ` +
    `waypoint CPU ${w.processCpuS.toFixed(2)} s = **${per1k(w.processCpuS)} CPU-s per 1000 req** ` +
    `(main thread ${per1k(w.mainThreadCpuS)}, other threads ${per1k(w.processCpuS - w.mainThreadCpuS)}); ` +
    `peak RSS ${w.peakRssMB.toFixed(1)} MB; load average ${w.loadAvg.join(' / ')} at the end`
  );
}

function cpuSection(run: ProfileRun): string {
  const w = run.cpu;
  const plain = run.plain;
  const s = summarizeCpuProfile(w.profile, run.root, w.markUs);
  const busy = Math.max(1e-9, s.totalMs - s.idleMs);
  // Shares come from the profiled window, CPU from the unprofiled one (the profiler's own thread
  // and its interrupts are not the waypoint's cost) unless that one did not keep the rate.
  const base = keptRate(plain) || !keptRate(w) ? plain : w;
  const n = Math.max(1, base.requests);
  const per1k = (ms: number): number => (ms / busy) * ((base.mainThreadCpuS / n) * 1000);
  const otherThreads = ((base.processCpuS - base.mainThreadCpuS) / n) * 1000;
  const scaledBy =
    base === plain
      ? 'in the window without a profiler; other threads from that window too'
      : 'in the profiled window, profiler included (the window without a profiler did not keep the rate)';
  const rows = s.categories
    .filter((c) => c.category !== 'idle')
    .map((c) => [
      c.category,
      c.group,
      c.ms.toFixed(0),
      pct(c.ms / busy),
      c.nativeMs > 0 ? pct(c.nativeMs / busy) : '',
      per1k(c.ms).toFixed(4),
    ]);
  rows.push([
    'other threads (not sampled: libuv pool, V8 platform)',
    '',
    '',
    '',
    '',
    otherThreads.toFixed(4),
  ]);
  const groups = new Map<Group, number>();
  for (const c of s.categories)
    if (c.group !== 'idle') groups.set(c.group, (groups.get(c.group) ?? 0) + c.ms);
  const groupRows = [...groups]
    .sort((a, b) => b[1] - a[1])
    .map(([g, ms]) => [GROUP_NAMES[g], pct(ms / busy), per1k(ms).toFixed(3)]);
  groupRows.push(['other threads', '', otherThreads.toFixed(3)]);
  groupRows.push(['**the waypoint process**', '', `**${(per1k(busy) + otherThreads).toFixed(3)}**`]);
  const fnRows = (fs: readonly FunctionRow[]): string[][] =>
    fs.slice(0, run.top).map((f) => [f.name, f.where, f.category, f.ms.toFixed(0), pct(f.ms / busy)]);
  const fnHead = ['function', 'where', 'category', 'self ms', '% of busy'];
  return [
    `### CPU without a profiler: ${windowLine(plain)}`,
    '',
    `With the CPU profiler (the next window): ${windowLine(w)}`,
    '',
    `Profile of that window: ${(s.totalMs / 1000).toFixed(2)} s sampled, ${(s.idleMs / 1000).toFixed(2)} s idle, ${(busy / 1000).toFixed(2)} s busy on the main thread. ` +
      'Self time by category; a native function (C++ binding, builtin) is charged to the category of its nearest JS caller ' +
      `("of which native"). CPU-s per 1000 req = share of busy samples × the main thread's CPU per 1000 requests ${scaledBy}.`,
    '',
    table(['category', 'group', 'self ms', '% of busy', 'of which native', 'CPU-s per 1000 req'], rows),
    '',
    table(['group', '% of busy', 'CPU-s per 1000 req'], groupRows),
    '',
    `Top ${run.top} functions by self time:`,
    '',
    table(fnHead, fnRows(s.functions.filter((f) => f.category !== 'idle'))),
    '',
    `Top ${run.top} functions of our code:`,
    '',
    table(fnHead, fnRows(s.functions.filter((f) => /^(src|filters|config|bin)\b/.test(f.category)))),
  ].join('\n');
}

function memorySection(run: ProfileRun): string {
  const idle = memoryBreakdown(run.idle.smaps, run.idle.agent);
  const load = memoryBreakdown(run.plain.memory.smaps, run.plain.memory.agent);
  const names = [...new Set([...idle.map((r) => r.component), ...load.map((r) => r.component)])];
  const get = (rs: typeof idle, n: string): string => rs.find((r) => r.component === n)?.mb.toFixed(1) ?? '—';
  const rows = names.map((n) => [n, get(idle, n), get(load, n)]);
  const rss = (k: number): string => ((k * 1024) / 1e6).toFixed(1);
  const i = run.idle.smaps;
  const l = run.plain.memory.smaps;
  rows.push(['**RSS (smaps)**', `**${rss(i.rssKiB)}**`, `**${rss(l.rssKiB)}**`]);
  rows.push(['of which anonymous', rss(i.anonKiB), rss(l.anonKiB)]);
  rows.push(['[heap] (brk arena, part of the rest)', rss(i.brkKiB), rss(l.brkKiB)]);
  const used = (a: AgentSnapshot): string => (a.memoryUsage.heapUsed / 1e6).toFixed(1);
  rows.push(['V8 heap used (live + not yet collected)', used(run.idle.agent), used(run.plain.memory.agent)]);
  return [
    `### Memory by component, MB: idle (1 s after start-up) and at the end of the window without a profiler (its peak RSS ${run.plain.peakRssMB.toFixed(1)} MB)`,
    '',
    table(['component', 'idle', 'under load'], rows),
  ].join('\n');
}

function heapSection(run: ProfileRun): string {
  const h = run.heap;
  if (!h) return '';
  const s = summarizeHeapProfile(h.profile.head, run.root);
  // The heap profiler ran over the warmup and the window.
  const n = Math.max(1, h.requests + h.warmupRequests);
  const rows = s.categories.map((c) => [
    c.category,
    c.group,
    (c.bytes / n).toFixed(0),
    pct(c.bytes / s.totalBytes),
  ]);
  const fns = s.functions
    .slice(0, run.top)
    .map((f) => [f.name, f.where, f.category, (f.ms / n).toFixed(0), pct(f.ms / s.totalBytes)]);
  return [
    `### Allocations (sampling heap profiler, objects GC collected included): ${windowLine(h)}`,
    '',
    `${(s.totalBytes / n).toFixed(0)} bytes allocated per request (sampled estimate; the profiler's own cost inflates this window's CPU).`,
    '',
    table(['category', 'group', 'bytes per request', 'share'], rows),
    '',
    table(['function', 'where', 'category', 'bytes per request', 'share'], fns),
  ].join('\n');
}

function perfSection(run: ProfileRun): string {
  if (!run.perf) return '';
  return [
    '### Native view (Linux perf, every thread, the window without a V8 profiler)',
    '',
    table(
      ['where the samples are', 'share'],
      run.perf.map((g) => [g.group, `${g.percent.toFixed(1)}%`]),
    ),
    '',
  ].join('\n');
}

export function renderProfile(run: ProfileRun): string {
  const flags = run.nodeArgs.length ? run.nodeArgs.join(' ') : 'none';
  const env =
    Object.entries(run.env)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ') || 'none';
  return `${[
    `## Waypoint profile, istio workload (${run.date})`,
    '',
    `\`${run.command}\` — Node ${run.node}; ${run.pinning}; extra Node options: ${flags}; extra environment: ${env}; ` +
      `idle RSS ${run.idle.rssMB.toFixed(1)} MB; amaro (type stripping) loaded: ${run.cpu.memory.agent.amaroLoaded ? 'yes' : 'no'}.`,
    '',
    cpuSection(run),
    '',
    perfSection(run),
    memorySection(run),
    '',
    heapSection(run),
  ].join('\n')}\n`;
}
