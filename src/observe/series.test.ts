import client from 'prom-client';
import { describe, expect, it } from 'vitest';
import { SeriesCounter, SeriesHistogram } from './series.ts';

describe('SeriesCounter and SeriesHistogram', () => {
  it("render exactly as prom-client's own Counter and Histogram do", async () => {
    const ours = new client.Registry();
    const theirs = new client.Registry();
    const c1 = new SeriesCounter('x_total', 'X.', ['a', 'b'], ours);
    const c2 = new client.Counter({
      name: 'x_total',
      help: 'X.',
      labelNames: ['a', 'b'],
      registers: [theirs],
    });
    const buckets = [0.5, 1, 5, 10];
    const h1 = new SeriesHistogram('y', 'Y.', ['a'], buckets, ours);
    const h2 = new client.Histogram({
      name: 'y',
      help: 'Y.',
      labelNames: ['a'],
      buckets,
      registers: [theirs],
    });
    for (const [a, b, v] of [
      ['p', 'q', 0.2],
      ['p', 'q', 1],
      ['p', 'r', 7],
      ['s', 'q', 50],
    ] as const) {
      c1.labels(a, b).inc();
      c2.labels(a, b).inc();
      h1.labels(a).observe(v);
      h2.labels(a).observe(v);
    }
    c1.labels('p', 'q').inc(3);
    c2.labels('p', 'q').inc(3);
    expect(await ours.metrics()).toBe(await theirs.metrics());
    // The same JSON (for /stats), but for prom-client's exemplar: null.
    const json = async (r: client.Registry) =>
      JSON.parse(JSON.stringify(await r.getMetricsAsJSON(), (k, v) => (k === 'exemplar' ? undefined : v)));
    expect(await json(ours)).toEqual(await json(theirs));
  });
});
