// A compiled lookup over a route table, so a request need not try every entry: Exact paths are
// found by a map, Gateway API PathPrefix entries by their first path segment, and only the rest
// (plain prefixes, regexes, entries without a path) are tried in turn. Candidates are visited in
// table order, so the first match is the same as a linear scan's; with 1000 routes of distinct
// paths a request tries a handful of entries instead of a thousand.
import type { HttpRouteTable, RouteEntry } from './model.ts';

export interface RouteIndex {
  /** Exact (case-sensitive) path → entry positions, ascending. */
  readonly exact: ReadonlyMap<string, readonly number[]>;
  /** First path segment of a PathPrefix value (`/api` for `/api/v1`) → entry positions, ascending. */
  readonly segment: ReadonlyMap<string, readonly number[]>;
  /** Every other entry position, ascending: tried for every request. */
  readonly rest: readonly number[];
}

export function buildRouteIndex(entries: readonly RouteEntry[]): RouteIndex {
  const exact = new Map<string, number[]>();
  const segment = new Map<string, number[]>();
  const rest: number[] = [];
  entries.forEach((e, i) => {
    const p = e.match.path;
    if (p?.type === 'Exact' && !p.ignoreCase) push(exact, p.value, i);
    else if (p?.type === 'PathPrefix' && firstSegment(p.value) !== '')
      push(segment, firstSegment(p.value), i);
    else rest.push(i);
  });
  return { exact, segment, rest };
}

/** `/api` for `/api/v1/x` and `/api`; '' for `/` (a prefix that matches every path). */
export function firstSegment(path: string): string {
  const end = path.indexOf('/', 1);
  const seg = end < 0 ? path : path.slice(0, end);
  return seg === '/' ? '' : seg;
}

const NONE: readonly number[] = [];

/** Visits the entries that may match `path`, in table order, until `test` accepts one. */
export function findEntry(
  entries: readonly RouteEntry[],
  index: RouteIndex,
  path: string,
  test: (e: RouteEntry) => boolean,
): RouteEntry | undefined {
  const a = index.exact.get(path) ?? NONE;
  const b = index.segment.size > 0 ? (index.segment.get(firstSegment(path)) ?? NONE) : NONE;
  const c = index.rest;
  let i = 0;
  let j = 0;
  let k = 0;
  for (;;) {
    const x = i < a.length ? a[i]! : Number.MAX_SAFE_INTEGER;
    const y = j < b.length ? b[j]! : Number.MAX_SAFE_INTEGER;
    const z = k < c.length ? c[k]! : Number.MAX_SAFE_INTEGER;
    const next = Math.min(x, y, z);
    if (next === Number.MAX_SAFE_INTEGER) return undefined;
    if (next === x) i++;
    else if (next === y) j++;
    else k++;
    const e = entries[next]!;
    if (test(e)) return e;
  }
}

function push(map: Map<string, number[]>, key: string, i: number): void {
  const list = map.get(key);
  if (list) list.push(i);
  else map.set(key, [i]);
}

/** A route table with its index. */
export function routeTable(source: HttpRouteTable['source'], entries: readonly RouteEntry[]): HttpRouteTable {
  return { source, entries, index: buildRouteIndex(entries) };
}
