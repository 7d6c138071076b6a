// The cost of finding a request's metric children and counting it, side by side in one process:
// "key string" is how src/observe/metrics.ts did it before (a key built from the peers' ids and the
// response labels, one Map lookup, per request); "request-series" is how it does it now (identity
// lookups on the interned peer labels, then the route and a number packed from the response). Both
// count one request the same way (a counter, three histograms, waypoint_requests_total); the figure
// is the ratio, alternated over rounds.
// Run: node_modules/.bin/node bench/metrics-lookup.ts [--rounds 5] [--requests 1000000]
import { parseArgs } from 'node:util';
import client from 'prom-client';
import { ENVOY_BUCKETS, Metrics } from '../src/observe/metrics.ts';
import {
  type CounterChild,
  type HistogramChild,
  SeriesCounter,
  SeriesHistogram,
} from '../src/observe/series.ts';
import { unknownWorkload, type WorkloadLabels } from '../src/observe/workload-labels.ts';
import type { Outcome } from '../src/pipeline/context.ts';

const { values: args } = parseArgs({
  options: { rounds: { type: 'string', default: '5' }, requests: { type: 'string', default: '1000000' } },
});
const ROUNDS = Math.min(20, Math.max(1, Number(args.rounds)));
const N = Math.min(10_000_000, Math.max(1000, Number(args.requests)));

const gauges = {
  hboneSessions: () => 0,
  hboneTunnels: () => 0,
  upstreamHttp1Connections: () => 0,
  upstreamHttp2Connections: () => 0,
  upstreamHboneSessions: () => 0,
  draining: () => false,
  configVersion: () => 1,
};
// A realistic mix: 4 sources, 2 destinations, 2 routes, mostly 200 with a few 503s.
const sources = [0, 1, 2, 3].map((i) =>
  unknownWorkload(`spiffe://cluster.local/ns/shop/sa/client-${i}`, 'c'),
);
const destinations = [0, 1].map((i) => unknownWorkload(`spiffe://cluster.local/ns/shop/sa/web-${i}`, 'c'));
const routes = ['shop.web.0', undefined];
const outcomes: Outcome[] = [200, 200, 200, 503].map((status) => ({
  status,
  reason: status === 200 ? 'via_upstream' : 'upstream_connect_failure',
  grpcStatus: undefined,
  upstreamHost: '127.0.0.1:8080',
  bytesReceived: 1024,
  bytesSent: 1024,
  durationMs: 1.5,
  detail: undefined,
}));
const flagsOf = (o: Outcome): string => (o.status === 200 ? '-' : 'UF');
const svc = { name: 'web', namespace: 'shop', hostname: 'web.shop.svc.cluster.local', labels: {} };

/** The previous way: a key string per request (metrics.ts before this change), children from a Map. */
function keyString(): (i: number) => void {
  const reg = new client.Registry();
  const names = Array.from({ length: 25 }, (_, i) => `label_${i}`);
  const counter = (n: string) => new SeriesCounter(n, n, names, reg);
  const histogram = (n: string) => new SeriesHistogram(n, n, names, ENVOY_BUCKETS, reg);
  const f = { requests: counter('a'), duration: histogram('b'), req: histogram('c'), res: histogram('d') };
  const reasons = new SeriesCounter('e', 'e', ['reason', 'code', 'flags', 'route'], reg);
  const children = new Map<string, { c: CounterChild; h: HistogramChild[]; r: CounterChild }>();
  const ids = new WeakMap<object, number>();
  let nextId = 0;
  const idOf = (o: WorkloadLabels): number => {
    let id = ids.get(o);
    if (id === undefined) {
      id = ++nextId;
      ids.set(o, id);
    }
    return id;
  };
  return (i) => {
    const o = outcomes[i & 3]!;
    const s = sources[i & 3]!;
    const d = destinations[(i >> 2) & 1]!;
    const route = routes[(i >> 3) & 1];
    const flags = flagsOf(o);
    const peerKey = `${idOf(s)}|${idOf(d)}|${svc.hostname}|${svc.name}|${svc.namespace}`;
    const key = `${peerKey}|http|${o.status}|${o.grpcStatus ?? ''}|${o.reason}|${flags}|${route ?? ''}`;
    let c = children.get(key);
    if (!c) {
      const values = [
        ...names.slice(5).map((n) => `${n}-${s.principal}-${d.principal}`),
        'http',
        String(o.status),
        '',
        flags,
        'mutual_tls',
      ];
      c = {
        c: f.requests.labels(...values),
        h: [f.duration.labels(...values), f.req.labels(...values), f.res.labels(...values)],
        r: reasons.labels(o.reason, String(o.status), flags, route ?? ''),
      };
      children.set(key, c);
    }
    c.c.inc();
    c.h[0]!.observe(o.durationMs);
    c.h[1]!.observe(o.bytesReceived);
    c.h[2]!.observe(o.bytesSent);
    c.r.inc();
  };
}

function requestSeries(): (i: number) => void {
  const m = new Metrics(gauges, { defaultMetrics: false });
  const service = m.requests.service(svc as never);
  return (i) => {
    const o = outcomes[i & 3]!;
    m.requests
      .peers(sources[i & 3]!, destinations[(i >> 2) & 1]!, service)
      .request(o, flagsOf(o), false, routes[(i >> 3) & 1]);
  };
}

/** ns per request of `run`, after a warm-up. */
function time(run: (i: number) => void): number {
  for (let i = 0; i < 20_000; i++) run(i);
  const t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) run(i);
  return Number(process.hrtime.bigint() - t) / N;
}

const before = keyString();
const after = requestSeries();
const ratios: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const a = time(before);
  const b = time(after);
  ratios.push(b / a);
  console.log(`round ${r + 1}: key string ${a.toFixed(0)} ns, request-series ${b.toFixed(0)} ns per request`);
}
ratios.sort((x, y) => x - y);
console.log(`request-series / key string, median of ${ROUNDS}: ${ratios[ROUNDS >> 1]!.toFixed(2)}`);
