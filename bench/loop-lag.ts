// Preloaded into a bench waypoint (`node --import bench/loop-lag.ts`): the event loop's delay as the
// process itself sees it, from perf_hooks.monitorEventLoopDelay at BENCH_LOOP_LAG_MS resolution
// (default 2 ms; prom-client's 10 ms is too coarse for a 10 ms target; bench --loop-lag-ms). On SIGUSR2 it prints one JSON line on stdout
// with the delay since the previous SIGUSR2 and starts over, so the bench brackets its measured
// window with two signals. Loaded from the bench's tree, so a baseline commit's waypoint gets the
// same probe. A stall of L ms reads as about L − resolution (the histogram subtracts it).
import { monitorEventLoopDelay } from 'node:perf_hooks';

const RESOLUTION_MS = Number(process.env.BENCH_LOOP_LAG_MS) || 2;
const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
histogram.enable();
let since = performance.now();

process.on('SIGUSR2', () => {
  const ms = (ns: number): number => Math.round(ns / 1e4) / 100;
  const line = {
    loopLag: {
      seconds: Math.round(performance.now() - since) / 1000,
      samples: histogram.count,
      maxMs: ms(histogram.max),
      p99Ms: ms(histogram.percentile(99)),
      p999Ms: ms(histogram.percentile(99.9)),
      meanMs: ms(histogram.mean),
      resolutionMs: RESOLUTION_MS,
    },
  };
  histogram.reset();
  since = performance.now();
  process.stdout.write(`${JSON.stringify(line)}\n`);
});
