// The bench's derived figures: ratios to HAProxy come from the same round, targets take the median
// of the waypoint's rounds, and a path that did not keep the rate meets no resource target.
import { describe, expect, it } from 'vitest';
import type { PathName } from './lab.ts';
import type { LoadResult } from './loadgen.ts';
import { analyze, type BenchReport, median, printReport } from './report.ts';
import type { LoadRun } from './run.ts';

const latency = (p99: number) => ({ count: 1000, p50: 1, p90: 2, p99, p999: p99 * 2, max: p99 * 3, mean: 1 });

function run(
  path: PathName,
  round: number,
  o: { p99: number; cpu: number; rssMB: number; rps?: number },
): LoadRun {
  const rps = o.rps ?? 1000;
  const result = {
    mode: 'constant-rate',
    connections: 4,
    targetRate: 1000,
    windowSeconds: 10,
    completed: rps * 10,
    ok: rps * 10,
    rps,
    statuses: { '200': rps * 10 },
    errors: { reset: 0, timeout: 0, protocol: 0 },
    reconnects: 0,
    unsent: (1000 - rps) * 10,
    warmupRequests: 0,
    latency: latency(o.p99),
    service: latency(o.p99),
    sendLag: latency(0),
    histogram: '',
  } as unknown as LoadResult;
  const hop = { waypoint: 'waypoint', haproxy: 'haproxy' }[path as string];
  const processes = hop
    ? { [hop]: { pid: 1, cpuSeconds: o.cpu, peakRssBytes: o.rssMB * 1e6, hwmBytes: o.rssMB * 1e6 } }
    : {};
  return {
    workload: 'istio',
    path,
    round,
    result,
    window: { wallSeconds: 10, processes, system: { busyCpus: 0, perCpuBusy: [] } },
    loopLag: {
      seconds: 10,
      samples: 5000,
      maxMs: 4 + round,
      p99Ms: 1,
      p999Ms: 2,
      meanMs: 0.5,
      resolutionMs: 2,
    },
  };
}

function report(loads: LoadRun[]): BenchReport {
  return {
    meta: {
      date: 'd',
      finished: 'f',
      command: 'npm run bench',
      node: 'v24',
      machine: { nproc: 2, cpuModel: 'cpu', memoryGiB: 1, kernel: 'k' },
      framing: 'length',
      git: 'g',
      rounds: 2,
      pinning: 'p',
      clockTicks: 100,
      sampleMs: 100,
      warmupS: 2,
      transferBytes: 0,
      addresses: {},
      workloads: {},
      logs: 'l',
    },
    loads,
    transfers: [],
    waypointNotes: [],
    quietNotes: [],
  };
}

describe('bench report', () => {
  it('takes ratios to HAProxy from the same round and targets from the median of the rounds', () => {
    const d = analyze(
      report([
        run('floor', 1, { p99: 1, cpu: 0, rssMB: 0 }),
        run('waypoint', 1, { p99: 2, cpu: 2, rssMB: 100 }),
        run('haproxy', 1, { p99: 1.5, cpu: 1, rssMB: 20 }),
        run('floor', 2, { p99: 1, cpu: 0, rssMB: 0 }),
        run('waypoint', 2, { p99: 4, cpu: 3, rssMB: 110 }),
        run('haproxy', 2, { p99: 1.5, cpu: 3, rssMB: 20 }),
      ]),
    );
    const wp = d.loads.filter((f) => f.path === 'waypoint');
    // Round 1: 0.2 vs 0.1 CPU-s/1k; round 2: 0.3 vs 0.3.
    expect(wp.map((f) => f.vsHaproxy?.hopCpuPer1k)).toEqual([2, 1]);
    expect(wp.map((f) => f.vsHaproxy?.hopPeakRss)).toEqual([5, 5.5]);
    expect(wp.map((f) => f.vsFloor?.addedP999ms)).toEqual([2, 6]);
    const t = Object.fromEntries(d.targets.map((x) => [x.target, x]));
    expect(t['added p99 over the floor (median of 2)']).toMatchObject({ value: '+2.00 ms', met: true });
    expect(t['added p99.9 over the floor (median of 2)']).toMatchObject({ value: '+4.00 ms', met: true });
    expect(t["event loop's worst lag (median of 2)"]).toMatchObject({ value: '5.5 ms', met: true });
    expect(t['waypoint RSS (max VmRSS sample) (median of 2)']).toMatchObject({
      value: '105.0 MB',
      met: true,
    });
    expect(t['waypoint CPU at 1000 req/s (median of 2)']?.met).toBe(true);
  });

  it('meets no target for a waypoint that did not keep the rate, however little it spent', () => {
    const d = analyze(
      report([
        run('floor', 1, { p99: 1, cpu: 0, rssMB: 0 }),
        run('waypoint', 1, { p99: 1, cpu: 0.1, rssMB: 50, rps: 500 }),
      ]),
    );
    expect(d.targets.length).toBeGreaterThan(0);
    expect(d.targets.filter((x) => x.met)).toEqual([]);
    expect(d.targets.find((x) => x.target.startsWith('waypoint CPU'))?.value).toContain('rate not kept');
  });

  it('prints the hop table with the HAProxy ratios, and medians of odd and even counts', () => {
    const text = printReport(
      report([
        run('floor', 1, { p99: 1, cpu: 0, rssMB: 0 }),
        run('waypoint', 1, { p99: 2, cpu: 2, rssMB: 100 }),
        run('haproxy', 1, { p99: 1.5, cpu: 1, rssMB: 20 }),
      ]),
    );
    expect(text).toContain('## The L7 hop of each path');
    expect(text).toMatch(/\| istio +\| waypoint r1 +\| +0\.200 \|.*\| +×2\.00 \| +×5\.00 \|/);
    expect(median([3, undefined, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(median([])).toBeUndefined();
  });
});
