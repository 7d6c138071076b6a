// Does a request match a route entry? Field semantics of l7-semantics.md §4.2 (Gateway API) and
// §4.9 (VirtualService). All fields of one match are ANDed; the caller ORs matches by trying
// entries in order. Runs per request over compiled, frozen matches: no allocation on the common
// path except the query string parse, done only when an entry has query matches.
import type { RequestContext } from '../../src/pipeline/context.ts';
import type { HeaderMatch, PathMatch, QueryParamMatch, RouteMatch, ValueMatch } from './model.ts';

export function matchesRoute(m: RouteMatch, ctx: RequestContext, servicePort: number): boolean {
  if (m.port !== undefined && m.port !== servicePort) return false;
  if (m.method && !matchesValue(m.method, ctx.method)) return false;
  if (m.path && !matchesPath(m.path, pathOf(ctx.path))) return false;
  if (m.authority && !matchesValue(m.authority, ctx.authority)) return false;
  for (const h of m.headers) if (!matchesHeader(h, headerValue(ctx, h.name))) return false;
  if (m.queryParams.length > 0 && !matchesQuery(m.queryParams, ctx.path)) return false;
  return true;
}

/** The path without its query string: path matches never see the query. */
export function pathOf(pathAndQuery: string): string {
  const q = pathAndQuery.indexOf('?');
  return q < 0 ? pathAndQuery : pathAndQuery.slice(0, q);
}

export function matchesPath(m: PathMatch, path: string): boolean {
  switch (m.type) {
    case 'Exact':
      return m.ignoreCase ? path.toLowerCase() === m.value.toLowerCase() : path === m.value;
    case 'Prefix':
      return m.ignoreCase ? path.toLowerCase().startsWith(m.value.toLowerCase()) : path.startsWith(m.value);
    case 'PathPrefix':
      return matchesSegmentPrefix(m.value, path);
    case 'RegularExpression':
      return m.regex?.test(path) ?? false;
  }
}

/**
 * Gateway API PathPrefix (Envoy path_separated_prefix): element-wise, a trailing `/` in the value
 * ignored. `/v2` matches `/v2`, `/v2/` and `/v2/x`, not `/v2x`.
 */
export function matchesSegmentPrefix(value: string, path: string): boolean {
  const prefix = value.endsWith('/') ? value.slice(0, -1) : value;
  if (prefix === '') return true;
  if (!path.startsWith(prefix)) return false;
  return path.length === prefix.length || path.charCodeAt(prefix.length) === 47; // '/'
}

export function matchesValue(m: ValueMatch, value: string): boolean {
  switch (m.type) {
    case 'Present':
      return true;
    case 'Exact':
      return m.ignoreCase ? value.toLowerCase() === m.value.toLowerCase() : value === m.value;
    case 'Prefix':
      return m.ignoreCase ? value.toLowerCase().startsWith(m.value.toLowerCase()) : value.startsWith(m.value);
    case 'RegularExpression':
      return m.regex?.test(value) ?? false;
  }
}

function matchesHeader(h: HeaderMatch, value: string | undefined): boolean {
  // withoutHeaders: a missing header counts as empty; `{}` (presence) inverted means absent.
  if (h.invert) return h.match.type === 'Present' ? value === undefined : !matchesValue(h.match, value ?? '');
  return value !== undefined && matchesValue(h.match, value);
}

/** A repeated request header is seen as its values joined with `,`, as Envoy does. */
function headerValue(ctx: RequestContext, name: string): string | undefined {
  const v = ctx.headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(',') : v;
}

function matchesQuery(matches: readonly QueryParamMatch[], pathAndQuery: string): boolean {
  const q = pathAndQuery.indexOf('?');
  if (q < 0) return false;
  const params = new URLSearchParams(pathAndQuery.slice(q + 1));
  for (const m of matches) {
    // Envoy matches the first value of a repeated parameter.
    const v = params.get(m.name);
    if (v === null || !matchesValue(m.match, v)) return false;
  }
  return true;
}
