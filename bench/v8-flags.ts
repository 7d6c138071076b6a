// `node bench/v8-flags.ts [--rounds N] [--duration S]`: the waypoint's V8 flags by measurement. Runs
// `bench/run.ts --workload istio --path floor,waypoint,haproxy` once per variant (each variant's flags
// added after the production ones, so a later flag wins), N rounds alternating the variants, and
// prints one Markdown row per run: idle RSS, RSS under load, CPU-s/1k, loop lag, GCs, failures,
// and the machine's load average. Bounded: at most 10 rounds of 10 variants, each run time-limited.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH, HAPROXY_BIN } from './lab.ts';
import type { BenchReport } from './report.ts';

const VARIANTS: ReadonlyArray<readonly [string, readonly string[]]> = [
  ['production (semi 2, single-threaded GC)', []],
  ['semi 1', ['--max-semi-space-size=1']],
  ['semi 4', ['--max-semi-space-size=4']],
  ['semi 8', ['--max-semi-space-size=8']],
  ['semi 16 (V8 default)', ['--max-semi-space-size=16']],
  ['+ max-old-space 96', ['--max-old-space-size=96']],
  ['+ optimize-for-size', ['--optimize-for-size']],
  ['parallel GC', ['--no-single-threaded-gc']],
  [
    'semi 1 + optimize-for-size + max-old 96',
    ['--max-semi-space-size=1', '--optimize-for-size', '--max-old-space-size=96'],
  ],
];

function row(label: string, file: string): string {
  const r = JSON.parse(readFileSync(file, 'utf8')) as Required<BenchReport>;
  const f = r.derived.loads.find((x) => x.path === 'waypoint');
  const rt = r.loads.find((x) => x.path === 'waypoint')?.runtime;
  const idle = r.idleRss?.find((x) => x.hop === 'waypoint')?.rssMB;
  if (!f || f.error) return `| ${label} | failed: ${f?.error ?? 'no waypoint run'} |`;
  const n = (x: number | undefined, d: number): string => (x === undefined ? '—' : x.toFixed(d));
  return `| ${label} | ${n(idle, 1)} | ${n(f.hopPeakRssMB, 1)} | ${n(f.hopCpuPer1k, 3)} | ${n(f.vsHaproxy?.hopCpuPer1k, 2)} | ${n(f.loopLagMaxMs, 1)} | ${rt?.gcMinorCount ?? '—'} / ${n(rt?.gcMinorMs, 0)} | ${rt?.gcMajorCount ?? 0} / ${n(rt?.gcMajorMs, 0)} | ${(f.errors ?? 0) + (f.non2xx ?? 0) + (f.unsent ?? 0)} | ${f.loadAvg?.[0] ?? '—'} |`;
}

const { values } = parseArgs({ options: { rounds: { type: 'string' }, duration: { type: 'string' } } });
const rounds = Math.min(10, Math.max(1, Number(values.rounds ?? 1) || 1));
const duration = Math.min(60, Math.max(5, Number(values.duration ?? 10) || 10));
process.stdout.write(
  '| V8 flags (added to production) | idle RSS MB | RSS MB under load | CPU-s/1k | CPU ×haproxy | loop lag max ms | minor GCs / ms | major GCs / ms | failed | load avg 1 min |\n| :-- | --: | --: | --: | --: | --: | --: | --: | --: | --: |\n',
);
for (let round = 0; round < rounds; round++) {
  for (const [label, flags] of VARIANTS) {
    const args = [join(BENCH, 'run.ts'), '--workload', 'istio', '--duration', String(duration)];
    args.push(
      '--path',
      HAPROXY_BIN ? 'floor,waypoint,haproxy' : 'floor,waypoint',
      '--no-autocannon',
      '--quiet-wait',
      '5',
    );
    for (const f of flags) args.push(`--waypoint-node-arg=${f}`);
    let err = '';
    try {
      execFileSync(process.execPath, args, {
        stdio: ['ignore', 'ignore', 'pipe'],
        timeout: (duration * 3 + 120) * 1000,
      });
    } catch (e) {
      err = (e as Error).message.split('\n')[0] ?? 'failed';
    }
    process.stdout.write(
      err ? `| ${label} | run failed: ${err} |\n` : `${row(label, join(BENCH, 'out/latest.json'))}\n`,
    );
  }
}
