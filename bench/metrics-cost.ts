// The cost of counting one request in the istio_* families (one counter, three histograms, 25 labels
// each): prom-client's own children, which hash their labels on every call, against series.ts's
// plain records. Run: node_modules/.bin/node bench/metrics-cost.ts — both in the same run, as a ratio.
import client from 'prom-client';
import { ENVOY_BUCKETS } from '../src/observe/metrics.ts';
import { SeriesCounter, SeriesHistogram } from '../src/observe/series.ts';

const names = Array.from({ length: 25 }, (_, i) => `label_${i}`);
const values = names.map((n) => `${n}-value-xxxxxxxx`);
const N = 1_000_000;

function run(label: string, c: { inc(): void }, h: Array<{ observe(v: number): void }>): number {
  const once = (i: number): void => {
    c.inc();
    for (const x of h) x.observe(i % 700);
  };
  for (let i = 0; i < 10_000; i++) once(i);
  const t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) once(i);
  const ns = Number(process.hrtime.bigint() - t) / N;
  console.log(`${label}: ${ns.toFixed(0)} ns per request`);
  return ns;
}

const theirs = new client.Registry();
const ours = new client.Registry();
const a = run(
  'prom-client children',
  new client.Counter({ name: 'a', help: 'a', labelNames: names, registers: [theirs] }).labels(...values),
  ['b', 'c', 'd'].map((n) =>
    new client.Histogram({
      name: n,
      help: n,
      labelNames: names,
      buckets: ENVOY_BUCKETS,
      registers: [theirs],
    }).labels(...values),
  ),
);
const b = run(
  'series.ts children  ',
  new SeriesCounter('a', 'a', names, ours).labels(...values),
  ['b', 'c', 'd'].map((n) => new SeriesHistogram(n, n, names, ENVOY_BUCKETS, ours).labels(...values)),
);
console.log(`prom-client / series.ts: ${(a / b).toFixed(1)}x`);
