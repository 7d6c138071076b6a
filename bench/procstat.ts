// Reading a process's CPU time and memory from /proc (Linux). utime+stime in /proc/PID/stat are in
// clock ticks (getconf CLK_TCK, normally 100) and cover every thread of the process; VmRSS and
// VmHWM in /proc/PID/status are in KiB. VmHWM is the peak since the process started and never goes
// down, so callers also sample VmRSS during a run and keep the largest sample.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let ticks: number | undefined;

/** Clock ticks per second (`getconf CLK_TCK`), 100 if getconf is missing. */
export function clockTicks(): number {
  if (ticks !== undefined) return ticks;
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5_000 }).trim());
    ticks = Number.isInteger(n) && n > 0 ? n : 100;
  } catch {
    ticks = 100;
  }
  return ticks;
}

/** The process and its live descendants (a `run --concurrency N` primary and its workers). */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length && out.length < 256; i++) {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${out[i]}/task`);
    } catch {}
    for (const t of tasks) {
      try {
        const kids = readFileSync(`/proc/${out[i]}/task/${t}/children`, 'utf8').trim();
        if (kids) out.push(...kids.split(' ').map(Number));
      } catch {}
    }
  }
  return out;
}

/** CPU seconds of the process and its live descendants (see cpuSeconds); undefined once it is gone. */
export function treeCpuSeconds(pid: number): number | undefined {
  const [own, ...rest] = processTree(pid).map(cpuSeconds);
  return own === undefined ? undefined : rest.reduce<number>((a, b) => a + (b ?? 0), own);
}

/** VmRSS and VmHWM summed over the process and its live descendants. */
export function treeMemory(pid: number): MemorySample | undefined {
  const [own, ...rest] = processTree(pid).map(memory);
  if (!own) return undefined;
  return rest.reduce<MemorySample>(
    (a, b) => ({ rss: a.rss + (b?.rss ?? 0), hwm: a.hwm + (b?.hwm ?? 0) }),
    own,
  );
}

/** CPU seconds (user + system) the process has used so far; undefined once it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  return statCpuSeconds(`/proc/${pid}/stat`);
}

/** CPU seconds of one thread of a process (its main thread: tid = pid). */
export function threadCpuSeconds(pid: number, tid: number): number | undefined {
  return statCpuSeconds(`/proc/${pid}/task/${tid}/stat`);
}

function statCpuSeconds(file: string): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime is field 14, stime field 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return (utime + stime) / clockTicks();
}

export interface MemorySample {
  /** Resident set size now, bytes. */
  readonly rss: number;
  /** Peak resident set size since the process started, bytes. */
  readonly hwm: number;
}

export function memory(pid: number): MemorySample | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kib = (field: string): number => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return m ? Number(m[1]) * 1024 : 0;
  };
  return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
}

/** Busy and total clock ticks, all CPUs together and per CPU, from /proc/stat. */
export interface CpuTicks {
  readonly busy: number;
  readonly total: number;
  readonly perCpu: ReadonlyArray<{ busy: number; total: number }>;
}

export function cpuTicks(): CpuTicks | undefined {
  let stat: string;
  try {
    stat = readFileSync('/proc/stat', 'utf8');
  } catch {
    return undefined;
  }
  const parse = (line: string): { busy: number; total: number } => {
    // user nice system idle iowait irq softirq steal (guest time is already inside user)
    const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    const total = f.reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  };
  const lines = stat.split('\n');
  const all = lines.find((l) => l.startsWith('cpu '));
  if (!all) return undefined;
  return { ...parse(all), perCpu: lines.filter((l) => /^cpu\d+ /.test(l)).map(parse) };
}

export interface SystemFigures {
  /** CPUs busy on average over the window (all processes on the machine, kernel included). */
  readonly busyCpus: number;
  /** Fraction of each CPU that was busy. */
  readonly perCpuBusy: number[];
}

export function systemBetween(
  a: CpuTicks | undefined,
  b: CpuTicks | undefined,
  wallSeconds: number,
): SystemFigures {
  if (!a || !b || wallSeconds <= 0) return { busyCpus: Number.NaN, perCpuBusy: [] };
  return {
    busyCpus: (b.busy - a.busy) / clockTicks() / wallSeconds,
    perCpuBusy: b.perCpu.map((c, i) => {
      const p = a.perCpu[i];
      const total = c.total - (p?.total ?? 0);
      return total > 0 ? (c.busy - (p?.busy ?? 0)) / total : Number.NaN;
    }),
  };
}

/**
 * Waits (at most maxSeconds) until the machine is quiet: fewer than `threshold` CPUs busy over a
 * one-second sample. Other work on the machine (test suites, builds) skews every figure.
 */
export async function waitQuiet(
  maxSeconds: number,
  threshold: number,
): Promise<{ busyCpus: number; waitedS: number }> {
  const t0 = performance.now();
  let busyCpus = Number.NaN;
  do {
    const a = cpuTicks();
    const s0 = performance.now();
    await new Promise((r) => setTimeout(r, 1_000));
    busyCpus = systemBetween(a, cpuTicks(), (performance.now() - s0) / 1000).busyCpus;
    if (!(busyCpus >= threshold)) break;
  } while ((performance.now() - t0) / 1000 < maxSeconds);
  return { busyCpus, waitedS: (performance.now() - t0) / 1000 };
}

/** Follows a set of processes through one measured window: CPU delta and the peak of VmRSS samples. */
export class ProcessWatch {
  readonly #pids: ReadonlyMap<string, number>;
  readonly #cpu0 = new Map<string, number>();
  readonly #peak = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #t0 = 0;
  #ticks0: CpuTicks | undefined;

  /** The processes measured with their descendants (the waypoint: its workers under --concurrency). */
  readonly #trees: ReadonlySet<string>;

  constructor(pids: ReadonlyMap<string, number>, trees: Iterable<string> = ['waypoint']) {
    this.#pids = pids;
    this.#trees = new Set(trees);
  }

  #cpu(name: string, pid: number): number | undefined {
    return this.#trees.has(name) ? treeCpuSeconds(pid) : cpuSeconds(pid);
  }

  #memory(name: string, pid: number): MemorySample | undefined {
    return this.#trees.has(name) ? treeMemory(pid) : memory(pid);
  }

  /** Takes the CPU baseline and starts sampling VmRSS every intervalMs. */
  start(intervalMs: number): void {
    this.#t0 = performance.now();
    this.#ticks0 = cpuTicks();
    for (const [name, pid] of this.#pids) {
      this.#cpu0.set(name, this.#cpu(name, pid) ?? Number.NaN);
      this.#peak.set(name, this.#memory(name, pid)?.rss ?? 0);
    }
    this.#timer = setInterval(() => this.#sample(), intervalMs);
  }

  #sample(): void {
    for (const [name, pid] of this.#pids) {
      const rss = this.#memory(name, pid)?.rss ?? 0;
      if (rss > (this.#peak.get(name) ?? 0)) this.#peak.set(name, rss);
    }
  }

  /** Stops sampling; per process: CPU seconds in the window, peak sampled VmRSS, VmHWM at the end. */
  stop(): { wallSeconds: number; processes: Record<string, ProcessFigures>; system: SystemFigures } {
    clearInterval(this.#timer);
    this.#sample();
    const ticks1 = cpuTicks();
    const wallSeconds = (performance.now() - this.#t0) / 1000;
    const processes: Record<string, ProcessFigures> = {};
    for (const [name, pid] of this.#pids) {
      const cpu1 = this.#cpu(name, pid) ?? Number.NaN;
      processes[name] = {
        pid,
        cpuSeconds: cpu1 - (this.#cpu0.get(name) ?? Number.NaN),
        peakRssBytes: this.#peak.get(name) ?? 0,
        hwmBytes: this.#memory(name, pid)?.hwm ?? 0,
      };
    }
    return { wallSeconds, processes, system: systemBetween(this.#ticks0, ticks1, wallSeconds) };
  }
}

export interface ProcessFigures {
  readonly pid: number;
  /** utime+stime used inside the window. */
  readonly cpuSeconds: number;
  /** The largest VmRSS sampled inside the window. */
  readonly peakRssBytes: number;
  /** VmHWM at the end of the window (peak since the process started). */
  readonly hwmBytes: number;
}
