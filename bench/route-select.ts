// Route selection on its own: how long the waypoint takes to pick the route of one request from
// tables of 1, 100 and 1000 rules (the shapes of `npm run bench -- --routes N`), with the route index
// (what the waypoint runs) and with a linear scan of the same sorted table (what it would do
// without the index), side by side in one process. The fixed-rate bench cannot see either: both
// are far below its resolution. Bounded: a fixed count per case, and at most 2 s each.
//
//   node bench/route-select.ts

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FILTER_ORDER } from '../filters/index.ts';
import { matchesRoute, pathOf } from '../filters/routing/match.ts';
import type { RoutingConfig } from '../filters/routing/model.ts';
import { portKey } from '../filters/routing/model.ts';
import { findEntry } from '../filters/routing/route-index.ts';
import { ROUTING } from '../filters/routing/select.ts';
import { loadOnce } from '../src/explain/load-once.ts';
import type { RequestContext } from '../src/pipeline/context.ts';
import { ADDR, meshYaml, NS, TD } from './lab.ts';
import { type RouteShape, routesYaml } from './scenarios.ts';

const ITERATIONS = 200_000;
const MAX_MS = 2_000;

async function table(count: number, shape: RouteShape) {
  const dir = await mkdtemp(join(tmpdir(), 'route-select-'));
  try {
    await writeFile(join(dir, 'mesh.yaml'), meshYaml());
    await writeFile(join(dir, 'routes.yaml'), routesYaml(count, shape));
    const { snapshot } = await loadOnce({
      paths: [dir],
      gateway: { namespace: NS, name: 'waypoint' },
      trustDomain: TD,
      clusterDomain: 'cluster.local',
      factories: FILTER_ORDER,
    });
    const routing = snapshot?.filters[ROUTING] as RoutingConfig | undefined;
    const t = routing?.ports.get(portKey(NS, 'backend', ADDR.vip.port))?.producer;
    if (!t || t.entries.length !== count)
      throw new Error(`expected ${count} route entries, got ${t?.entries.length}`);
    return t;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** ns per selection of `select`, the median of 5 timed batches. */
function time(select: (ctx: RequestContext) => unknown, ctx: RequestContext): number {
  const batches: number[] = [];
  const deadline = performance.now() + MAX_MS;
  for (let b = 0; b < 5 && performance.now() < deadline; b++) {
    const n = ITERATIONS / 5;
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) if (!select(ctx)) throw new Error('no route selected');
    batches.push(Number(process.hrtime.bigint() - start) / n);
  }
  return batches.sort((a, b) => a - b)[Math.floor(batches.length / 2)]!;
}

// The bench's request: POST /echo, which only the last (catch-all) rule matches.
const ctx = { path: '/echo', method: 'POST', authority: 'backend', headers: {} } as unknown as RequestContext;
const rows: string[] = [];
for (const [count, shape] of [
  [1, 'exact'],
  [100, 'exact'],
  [1000, 'exact'],
  [100, 'prefix'],
  [1000, 'prefix'],
] as const) {
  const t = await table(count, shape);
  const test = (e: (typeof t.entries)[number]) => matchesRoute(e.match, ctx, ADDR.vip.port);
  const indexed = time((c) => findEntry(t.entries, t.index, pathOf(c.path), test), ctx);
  const linear = time(() => t.entries.find(test), ctx);
  rows.push(
    `| ${count} ${shape} | ${indexed.toFixed(0)} | ${linear.toFixed(0)} | ×${(linear / indexed).toFixed(1)} |`,
  );
}
process.stdout.write(
  `Route selection of POST /echo (matched by the last rule), Node ${process.version}\n\n` +
    '| rules | index ns/request | linear scan ns/request | linear / index |\n| --: | --: | --: | --: |\n' +
    `${rows.join('\n')}\n`,
);
