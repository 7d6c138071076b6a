import { describe, expect, it } from 'vitest';
import type { RequestContext } from '../../src/pipeline/context.ts';
import { matchesRoute } from './match.ts';
import type { PathMatch, RouteEntry } from './model.ts';
import { buildRouteIndex, findEntry, firstSegment } from './route-index.ts';

const SEGMENTS = ['', 'api', 'v1', 'v2', 'users', 'a'];

/** A small deterministic generator, so a failure reproduces. */
function rng(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x7fffffff;
  };
}

function randomPath(r: () => number): string {
  const n = Math.floor(r() * 4);
  let p = '';
  for (let i = 0; i < n; i++) p += `/${SEGMENTS[Math.floor(r() * SEGMENTS.length)]}`;
  return p === '' ? '/' : p;
}

function randomEntry(r: () => number, i: number): RouteEntry {
  const kind = Math.floor(r() * 6);
  const value = randomPath(r);
  const path: PathMatch | undefined =
    kind === 0
      ? { type: 'Exact', value, ignoreCase: false, regex: undefined }
      : kind === 1
        ? { type: 'PathPrefix', value, ignoreCase: false, regex: undefined }
        : kind === 2
          ? { type: 'Prefix', value, ignoreCase: r() < 0.5, regex: undefined }
          : kind === 3
            ? {
                type: 'RegularExpression',
                value: '/v[0-9]/.*',
                ignoreCase: false,
                regex: /^(?:\/v[0-9]\/.*)$/,
              }
            : kind === 4
              ? { type: 'Exact', value: value.toUpperCase(), ignoreCase: true, regex: undefined }
              : undefined;
  return {
    match: {
      path,
      headers:
        r() < 0.3
          ? [
              {
                name: 'x-v',
                match: { type: 'Exact', value: 'one', ignoreCase: false, regex: undefined },
                invert: false,
              },
            ]
          : [],
      queryParams: [],
      method: undefined,
      authority: undefined,
      port: undefined,
    },
    ref: {
      kind: 'HTTPRoute',
      namespace: 'ns',
      name: 'r',
      ruleIndex: i,
      ruleName: undefined,
      display: `ns.r.${i}`,
    },
    action: {
      kind: 'direct',
      status: 200,
      body: String(i),
      responseHeaders: { set: [], add: [], remove: [] },
      cors: undefined,
      fault: undefined,
    },
  };
}

function ctxFor(path: string, header: boolean): RequestContext {
  return {
    path,
    method: 'GET',
    authority: 'a',
    headers: header ? { 'x-v': 'one' } : {},
  } as unknown as RequestContext;
}

describe('route index', () => {
  it('finds the same entry as trying every entry in order', () => {
    const r = rng(42);
    for (let t = 0; t < 200; t++) {
      const entries = Array.from({ length: 1 + Math.floor(r() * 40) }, (_, i) => randomEntry(r, i));
      const index = buildRouteIndex(entries);
      for (let q = 0; q < 30; q++) {
        const ctx = ctxFor(randomPath(r), r() < 0.5);
        const test = (e: RouteEntry) => matchesRoute(e.match, ctx, 80);
        expect(findEntry(entries, index, ctx.path, test)).toBe(entries.find(test));
      }
    }
  });

  it('tries only the candidates of the path, not the whole table', () => {
    const entries = Array.from({ length: 1000 }, (_, i) => randomEntry(() => 0, i)).map((e, i) => ({
      ...e,
      match: {
        ...e.match,
        headers: [],
        path: { type: 'Exact' as const, value: `/api/r${i}`, ignoreCase: false, regex: undefined },
      },
    }));
    const index = buildRouteIndex(entries);
    let tried = 0;
    const found = findEntry(entries, index, '/api/r777', (e) => {
      tried++;
      return matchesRoute(e.match, ctxFor('/api/r777', false), 80);
    });
    expect(found?.ref.ruleIndex).toBe(777);
    expect(tried).toBe(1);
  });

  it('takes the first segment of a prefix', () => {
    expect(firstSegment('/')).toBe('');
    expect(firstSegment('/api')).toBe('/api');
    expect(firstSegment('/api/v1')).toBe('/api');
  });
});
