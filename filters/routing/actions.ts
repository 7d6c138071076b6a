// What a matched route does to a request: header operations, URL rewrites and redirect targets
// (l7-semantics.md §4.4, §4.9). Pure functions over the compiled action and the request.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { HeaderOps, PathRewrite, RedirectAction } from './model.ts';

export const NO_HEADER_OPS: HeaderOps = Object.freeze({
  set: Object.freeze([]),
  add: Object.freeze([]),
  remove: Object.freeze([]),
});

export function isEmptyOps(ops: HeaderOps): boolean {
  return ops.set.length === 0 && ops.add.length === 0 && ops.remove.length === 0;
}

/**
 * Applies set (overwrite), add (append: the upstream sees `orig,new`) and remove, in Envoy's order:
 * removals last so a header both set and removed ends up removed. Names are lower case already.
 */
export function applyHeaderOps(headers: IncomingHttpHeaders | OutgoingHttpHeaders, ops: HeaderOps): void {
  const h = headers as Record<string, string | string[] | number | undefined>;
  for (const [name, value] of ops.set) h[name] = value;
  for (const [name, value] of ops.add) {
    const prev = h[name];
    if (prev === undefined) h[name] = value;
    else if (Array.isArray(prev)) h[name] = [...prev, value].join(',');
    else h[name] = `${prev},${value}`;
  }
  for (const name of ops.remove) delete h[name];
}

/** The rewritten path and query; the query string is always kept. */
export function rewritePath(rewrite: PathRewrite, pathAndQuery: string): string {
  const q = pathAndQuery.indexOf('?');
  const path = q < 0 ? pathAndQuery : pathAndQuery.slice(0, q);
  const query = q < 0 ? '' : pathAndQuery.slice(q);
  return replacePath(rewrite, path) + query;
}

function replacePath(rewrite: PathRewrite, path: string): string {
  switch (rewrite.kind) {
    case 'full':
      return rewrite.value;
    case 'regex':
      return path.replace(rewrite.regex, rewrite.substitution);
    case 'prefix': {
      if (!rewrite.segmentAware) return rewrite.value + path.slice(rewrite.prefix.length);
      // Gateway API ReplacePrefixMatch: whole segments; `/` strips the prefix.
      const prefix = rewrite.prefix.endsWith('/') ? rewrite.prefix.slice(0, -1) : rewrite.prefix;
      const rest = path.slice(prefix.length);
      const base = rewrite.value.endsWith('/') ? rewrite.value.slice(0, -1) : rewrite.value;
      const out = base + (rest === '' || rest.startsWith('/') ? rest : `/${rest}`);
      return out === '' ? '/' : out;
    }
  }
}

const DEFAULT_PORTS: Readonly<Record<string, number>> = { http: 80, https: 443 };

/** The Location of a redirect: scheme://host[:port]/path?query. */
export function redirectLocation(
  r: RedirectAction,
  req: { readonly authority: string; readonly pathAndQuery: string; readonly servicePort: number },
): string {
  const scheme = r.scheme ?? 'http';
  const { host, port: hostPort } = splitHostPort(req.authority);
  const hostname = r.hostname ?? host;
  let port: number | undefined;
  if (typeof r.port === 'number') port = r.port;
  else if (r.port === 'service') port = req.servicePort;
  else if (r.port === 'host') port = hostPort;
  const shown = port === undefined || port === DEFAULT_PORTS[scheme] ? '' : `:${port}`;
  const path = r.path ? rewritePath(r.path, req.pathAndQuery) : req.pathAndQuery;
  return `${scheme}://${hostname}${shown}${path}`;
}

function splitHostPort(authority: string): { host: string; port: number | undefined } {
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(authority);
  if (!m) return { host: authority, port: undefined };
  return { host: m[1] ?? authority, port: m[2] === undefined ? undefined : Number(m[2]) };
}
