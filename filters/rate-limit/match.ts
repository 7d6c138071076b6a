// Does a rule apply to a request, and which bucket does the request count against? A rule applies
// when every client selector holds; its bucket key is the rule's identity, its scope and the values
// its Distinct selectors found (one bucket per distinct value, as Envoy Gateway's Distinct).
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { RequestContext } from '../../src/pipeline/context.ts';
import type { AttachedRule, ClientSelector, PathSelector, StringSelector } from './model.ts';

/** What the selectors read from a request. */
export interface RequestFacts {
  readonly method: string;
  /** Without the query. */
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly sourceIp: string;
  /** `td/ns/NS/sa/SA` (no scheme), as AuthorizationPolicy principals. */
  readonly sourcePrincipal: string;
  readonly sourceNamespace: string;
  /** The bucket scope of a waypoint-wide rule: the destination (`Service ns/name`, `Pod ns/name`). */
  readonly destination: string;
}

export function factsOf(ctx: RequestContext): RequestFacts {
  const q = ctx.path.indexOf('?');
  const b = ctx.tunnel.binding;
  return {
    method: ctx.method,
    path: q < 0 ? ctx.path : ctx.path.slice(0, q),
    headers: ctx.headers,
    sourceIp: ctx.tunnel.source.ip,
    sourcePrincipal: ctx.tunnel.peer.principal,
    sourceNamespace: ctx.tunnel.peer.namespace,
    destination:
      b.kind === 'service'
        ? `Service ${b.service.namespace}/${b.service.name}`
        : `Pod ${b.pod.namespace}/${b.pod.name}`,
  };
}

/** Long values (tokens, long headers) are hashed so keys stay short and bounded. */
function keyPart(value: string): string {
  if (value.length <= 128) return encodeURIComponent(value);
  return `sha256-${createHash('sha256').update(value).digest('hex').slice(0, 32)}`;
}

/** Matches one string condition; pushes the value for Distinct. Absent values match only inverted. */
function matchString(s: StringSelector, value: string | undefined, distinct: string[]): boolean {
  if (s.type === 'Distinct') {
    if (value === undefined) return false;
    distinct.push(keyPart(value));
    return true;
  }
  if (value === undefined) return s.invert;
  const hit = s.type === 'Exact' ? value === s.value : (s.regex?.test(value) ?? false);
  return hit !== s.invert;
}

function matchPath(p: PathSelector, path: string): boolean {
  let hit: boolean;
  if (p.type === 'Exact') hit = path === p.value;
  else if (p.type === 'RegularExpression') hit = p.regex?.test(path) ?? false;
  else {
    const prefix = p.value.endsWith('/') && p.value.length > 1 ? p.value.slice(0, -1) : p.value;
    hit = prefix === '/' || path === prefix || path.startsWith(`${prefix}/`);
  }
  return hit !== p.invert;
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(',') : v;
}

function matchSelector(s: ClientSelector, f: RequestFacts, distinct: string[]): boolean {
  if (s.methods.length > 0 && !s.methods.includes(f.method)) return false;
  if (s.path && !matchPath(s.path, f.path)) return false;
  for (const h of s.headers) if (!matchString(h, headerValue(f.headers, h.name), distinct)) return false;
  if (s.sourceCIDR) {
    if (!s.sourceCIDR.contains(f.sourceIp)) return false;
    if (s.sourceCIDR.type === 'Distinct') distinct.push(keyPart(f.sourceIp));
  }
  if (s.sourcePrincipal && !matchString(s.sourcePrincipal, f.sourcePrincipal, distinct)) return false;
  if (s.sourceNamespace && !matchString(s.sourceNamespace, f.sourceNamespace, distinct)) return false;
  return true;
}

/**
 * The bucket key for this request under this rule, or undefined when the rule does not apply:
 * `NS/NAME:TYPE:INDEX:UNIT:SCOPE[:DISTINCT...]` (values URI-encoded, long ones hashed).
 */
export function bucketKey(a: AttachedRule, f: RequestFacts): string | undefined {
  const distinct: string[] = [];
  for (const s of a.rule.selectors) if (!matchSelector(s, f, distinct)) return undefined;
  const r = a.rule;
  const scope = keyPart(a.scope ?? f.destination);
  const base = `${r.policy}:${r.type}:${r.index}:${r.unit}:${scope}`;
  return distinct.length === 0 ? base : `${base}:${distinct.join(':')}`;
}
