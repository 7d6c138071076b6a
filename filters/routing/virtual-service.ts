// VirtualService http[] and tcp[] for a Service bound to this waypoint → one route table, in the
// VirtualService's own order (first match wins; l7-semantics.md §4.9). DestinationRule subsets are
// resolved through the cluster catalog.
import { parseIstioDuration } from '../../config/kinds/duration.ts';
import type {
  Destination,
  HeaderOperationsVs,
  HttpMatchVs,
  HttpRouteVs,
  VirtualService,
} from '../../config/kinds/virtual-service.ts';
import type { ConfigMessage } from '../../config/model.ts';
import type { Resource } from '../../config/resource.ts';
import {
  type Mirror,
  NO_RETRY,
  NO_TIMEOUTS,
  type RetryPolicy,
  type Timeouts,
} from '../../src/upstream/target.ts';
import { NO_HEADER_OPS } from './actions.ts';
import {
  compileRegex,
  configError,
  forwardAction,
  fraction,
  fullMatchRegex,
  headerOps,
  invalidRule,
  istioStringMatch,
  MATCH_ANY,
  routeRef,
} from './builders.ts';
import type { ClusterCatalog, ServiceRecord } from './clusters.ts';
import { MESH_DEFAULT_RETRY } from './defaults.ts';
import { matchesValue } from './match.ts';
import type {
  Backend,
  CorsPolicy,
  FaultPolicy,
  HeaderMatch,
  HeaderOps,
  HttpRouteTable,
  PathMatch,
  PathRewrite,
  RedirectAction,
  RouteAction,
  RouteEntry,
  RouteMatch,
  RouteRef,
  TcpBackends,
} from './model.ts';
import { routeTable } from './route-index.ts';

/** gRPC status names (VirtualService fault.abort.grpcStatus) → codes. */
const GRPC_CODES: Readonly<Record<string, number>> = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
};

export interface VsContext {
  readonly catalog: ClusterCatalog;
  readonly messages: ConfigMessage[];
  /** match.sourceNamespace is the proxy's namespace: the waypoint's, not the client's (§4.9). */
  readonly waypointNamespace: string;
}

/** A waypoint receives plaintext HTTP inside HBONE: Envoy's :scheme there is always `http`. */
const WAYPOINT_SCHEME = 'http';

/** Does the VirtualService's hosts list name this Service (short names relative to the VS namespace)? */
export function vsSelects(
  vs: Resource<VirtualService>,
  svc: ServiceRecord,
  catalog: ClusterCatalog,
): boolean {
  return (vs.spec.spec.hosts ?? []).some((h) => {
    if (h === '*') return true;
    const fqdn = catalog.fqdn(h, vs.namespace);
    if (fqdn.startsWith('*')) return svc.hosts.some((host) => host.endsWith(fqdn.slice(1)));
    // A ServiceEntry host is matched as written too (`api.example.com` is no short name).
    return svc.hosts.includes(fqdn) || svc.hosts.includes(h);
  });
}

/** A VirtualService applies at the mesh (and so at the waypoint) unless its gateways exclude `mesh`. */
export function vsForMesh(vs: Resource<VirtualService>): boolean {
  const gws = vs.spec.spec.gateways;
  return !gws || gws.length === 0 || gws.includes('mesh');
}

/** The Service port a VirtualService is compiled for, and where its problems go. */
interface VsScope {
  readonly vs: Resource<VirtualService>;
  readonly svc: ServiceRecord;
  readonly port: number;
  readonly c: VsContext;
}

export function compileVsHttp(
  vs: Resource<VirtualService>,
  svc: ServiceRecord,
  port: number,
  c: VsContext,
): HttpRouteTable {
  const s: VsScope = { vs, svc, port, c };
  const entries: RouteEntry[] = [];
  (vs.spec.spec.http ?? []).forEach((rule, i) => {
    const ref = routeRef('VirtualService', vs, i, rule.name);
    const matches: (HttpMatchVs | undefined)[] = rule.match?.length ? rule.match : [undefined];
    matches.forEach((m, j) => {
      const entry = vsEntry(rule, m, `spec.http[${i}]`, j, ref, s);
      if (entry) entries.push(entry);
    });
  });
  return routeTable('VirtualService', entries);
}

/** One match of a rule as a route entry; undefined when the match cannot hold at this waypoint. */
function vsEntry(
  rule: HttpRouteVs,
  m: HttpMatchVs | undefined,
  field: string,
  j: number,
  ref: RouteRef,
  s: VsScope,
): RouteEntry | undefined {
  const matchField = `${field}.match[${j}]`;
  if (!matchApplies(m, matchField, s)) return undefined;
  // A broken match matches everything: its rule's traffic must not fall through to later rules.
  let match = MATCH_ANY;
  try {
    // The scheme is known at compile time; a match that cannot hold is dropped.
    if (m?.scheme && !matchesValue(istioStringMatch(m.scheme, `${matchField}.scheme`), WAYPOINT_SCHEME))
      return undefined;
    match = vsMatch(m, matchField);
    return { match, ref, action: vsAction(rule, match.path, s, field, ref.display) };
  } catch (err) {
    const e = configError(err);
    warn(s.c, s.vs, e.field, `${e.message}; requests matching this rule get 500`);
    return { match, ref, action: invalidRule(e) };
  }
}

/** Whether a match's gateway, port and source conditions can hold at this waypoint and port. */
function matchApplies(m: HttpMatchVs | undefined, field: string, s: VsScope): boolean {
  if (m?.sourceLabels && Object.keys(m.sourceLabels).length > 0) {
    warn(
      s.c,
      s.vs,
      `${field}.sourceLabels`,
      'sourceLabels cannot be evaluated at a waypoint; this match is dropped',
    );
    return false;
  }
  if (m?.gateways?.length && !m.gateways.includes('mesh')) return false;
  if (m?.port != null && m.port !== s.port) return false;
  return !m?.sourceNamespace || m.sourceNamespace === s.c.waypointNamespace;
}

function vsMatch(m: HttpMatchVs | undefined, field: string): RouteMatch {
  const none = MATCH_ANY;
  if (!m) return none;
  const ignoreCase = m.ignoreUriCase ?? false;
  let path: PathMatch | undefined;
  if (m.uri) {
    if (m.uri.exact != null) path = { type: 'Exact', value: m.uri.exact, ignoreCase, regex: undefined };
    else if (m.uri.prefix != null)
      path = { type: 'Prefix', value: m.uri.prefix, ignoreCase, regex: undefined };
    else if (m.uri.regex != null)
      path = {
        type: 'RegularExpression',
        value: m.uri.regex,
        ignoreCase: false,
        regex: fullMatchRegex(m.uri.regex, `${field}.uri.regex`),
      };
  }
  const headers: HeaderMatch[] = [];
  for (const [name, sm] of Object.entries(m.headers ?? {}))
    headers.push({ name, match: istioStringMatch(sm, `${field}.headers.${name}`), invert: false });
  for (const [name, sm] of Object.entries(m.withoutHeaders ?? {}))
    headers.push({ name, match: istioStringMatch(sm, `${field}.withoutHeaders.${name}`), invert: true });
  return {
    path,
    headers,
    queryParams: Object.entries(m.queryParams ?? {}).map(([name, sm]) => ({
      name,
      match: istioStringMatch(sm, `${field}.queryParams.${name}`),
    })),
    method: m.method ? istioStringMatch(m.method, `${field}.method`) : undefined,
    authority: m.authority ? istioStringMatch(m.authority, `${field}.authority`) : undefined,
    port: m.port ?? undefined,
  };
}

function ops(
  h: HeaderOperationsVs | null | undefined,
  which: 'request' | 'response',
): { ops: HeaderOps; authority: string | undefined } {
  const o = h?.[which];
  if (!o) return { ops: NO_HEADER_OPS, authority: undefined };
  return headerOps(Object.entries(o.set ?? {}), Object.entries(o.add ?? {}), o.remove ?? []);
}

function vsAction(
  rule: HttpRouteVs,
  matched: PathMatch | undefined,
  s: VsScope,
  field: string,
  routeName: string,
): RouteAction {
  const req = ops(rule.headers, 'request');
  const res = ops(rule.headers, 'response');
  const cors = corsPolicy(rule, field);
  const fault = faultPolicy(rule);
  if (rule.redirect) return { ...vsRedirect(rule.redirect), responseHeaders: res.ops, cors };
  if (rule.directResponse) {
    const d = rule.directResponse;
    const body =
      d.body?.string ?? (d.body?.bytes ? Buffer.from(d.body.bytes, 'base64').toString('utf8') : '');
    return { kind: 'direct', status: d.status, body, responseHeaders: res.ops, cors, fault };
  }
  const path = vsPathRewrite(rule.rewrite, matched, field);
  const authority = rule.rewrite?.authority ?? req.authority;
  return forwardAction(
    {
      backends: vsBackends(rule.route ?? [], s, (k) => `${field}.route[${k}].destination`),
      requestHeaders: req.ops,
      responseHeaders: res.ops,
      rewrite: path || authority ? { authority, path } : undefined,
      mirrors: vsMirrors(rule, s, field),
      cors,
      timeouts: vsTimeouts(rule),
      retry: vsRetry(rule),
      fault,
    },
    routeName,
  );
}

function vsRedirect(
  r: NonNullable<HttpRouteVs['redirect']>,
): Omit<RedirectAction, 'responseHeaders' | 'cors'> {
  return {
    kind: 'redirect',
    status: r.redirectCode ?? 301,
    scheme: r.scheme ?? undefined,
    hostname: r.authority ?? undefined,
    // Envoy's redirect: a new authority without port_redirect drops the request's port.
    port:
      r.port ??
      (r.derivePort === 'FROM_PROTOCOL_DEFAULT' || (r.derivePort == null && r.authority)
        ? 'scheme-default'
        : r.derivePort === 'FROM_REQUEST_PORT'
          ? 'service'
          : 'host'),
    // redirect.uri is Envoy's path_redirect: the whole path, whatever the match; the query stays.
    path: r.uri != null ? { kind: 'full', value: r.uri } : undefined,
  };
}

/**
 * Weighted destinations (http or tcp): one destination gets everything whatever its weight; of
 * several, weight 0 (or none) is dropped.
 */
function vsBackends(
  dests: readonly { destination: Destination; weight?: number | null; headers?: HeaderOperationsVs | null }[],
  s: VsScope,
  field: (k: number) => string,
): Backend[] {
  const backends: Backend[] = [];
  dests.forEach((d, k) => {
    const weight = dests.length === 1 ? 100 : (d.weight ?? 0);
    if (weight === 0) return;
    backends.push({
      ...destination(d.destination, s, field(k)),
      weight,
      requestHeaders: ops(d.headers, 'request').ops,
      responseHeaders: ops(d.headers, 'response').ops,
    });
  });
  return backends;
}

/** mirror (with mirrorPercentage or the deprecated mirrorPercent) and mirrors[]; unresolved ones are dropped. */
function vsMirrors(rule: HttpRouteVs, s: VsScope, field: string): Mirror[] {
  const mirrors: Mirror[] = [];
  const mirrorOf = (dst: Destination, share: number, f: string): void => {
    const b = destination(dst, s, f);
    if (b.cluster && share > 0) mirrors.push({ cluster: b.cluster, fraction: share });
  };
  if (rule.mirror) {
    const share = rule.mirrorPercentage
      ? fraction(rule.mirrorPercentage, 1)
      : rule.mirrorPercent != null
        ? rule.mirrorPercent / 100
        : 1;
    mirrorOf(rule.mirror, share, `${field}.mirror`);
  }
  (rule.mirrors ?? []).forEach((m, k) => {
    mirrorOf(m.destination, fraction(m.percentage, 1), `${field}.mirrors[${k}].destination`);
  });
  return mirrors;
}

function vsPathRewrite(
  rw: HttpRouteVs['rewrite'],
  matched: PathMatch | undefined,
  field: string,
): PathRewrite | undefined {
  if (rw?.uri != null) return uriRewrite(rw.uri, matched);
  if (!rw?.uriRegexRewrite) return undefined;
  return {
    kind: 'regex',
    // Not global: a frozen global RegExp cannot update lastIndex. The first match is replaced.
    regex: compileRegex(rw.uriRegexRewrite.match, `${field}.rewrite.uriRegexRewrite.match`),
    // RE2's \1 back-references are JavaScript's $1.
    substitution: rw.uriRegexRewrite.rewrite.replace(/\\(\d)/g, '$$$1'),
  };
}

function vsTimeouts(rule: HttpRouteVs): Timeouts {
  const timeoutMs = rule.timeout ? parseIstioDuration(rule.timeout) : 0;
  const perTry = rule.retries?.perTryTimeout ? parseIstioDuration(rule.retries.perTryTimeout) : 0;
  if (timeoutMs <= 0 && perTry <= 0) return NO_TIMEOUTS;
  return {
    requestMs: timeoutMs > 0 ? timeoutMs : undefined,
    perTryMs: perTry > 0 ? perTry : undefined,
    idleMs: undefined,
  };
}

/** rewrite.uri: replaces the matched prefix, the whole path for an exact match; without a uri match, Envoy's prefix `/`. */
function uriRewrite(uri: string, matched: PathMatch | undefined): PathRewrite {
  if (matched?.type === 'Prefix')
    return { kind: 'prefix', prefix: matched.value, value: uri, segmentAware: false };
  if (matched?.type === 'Exact' || matched?.type === 'RegularExpression') return { kind: 'full', value: uri };
  return { kind: 'prefix', prefix: '/', value: uri, segmentAware: false };
}

function destination(
  d: Destination,
  s: VsScope,
  field: string,
): Pick<Backend, 'cluster' | 'invalid' | 'invalidStatus'> {
  const { vs, svc, port, c } = s;
  const target = c.catalog.serviceByHost(d.host, vs.namespace);
  const bad = (why: string) => {
    warn(c, vs, field, why);
    return { cluster: undefined, invalid: why, invalidStatus: 503 };
  };
  if (!target) return bad(`host ${d.host} is not a known Service`);
  // No port: the port the client dialled when the destination has it, else its only port.
  const p =
    d.port?.number ??
    (target.ports.some((sp) => sp.port === port) || target === svc
      ? port
      : target.ports.length === 1
        ? target.ports[0]?.port
        : undefined);
  if (p === undefined) return bad(`host ${d.host} has several ports; destination.port is required`);
  const found = c.catalog.cluster(target.info.namespace, target.info.name, p, d.subset ?? undefined);
  if (!found.ok) return bad(found.why);
  return { cluster: found.cluster, invalid: undefined, invalidStatus: 503 };
}

function vsRetry(rule: HttpRouteVs): RetryPolicy {
  const r = rule.retries;
  if (!r) return MESH_DEFAULT_RETRY;
  const attempts = r.attempts ?? 2;
  if (attempts === 0) return NO_RETRY;
  const tokens = (r.retryOn ?? 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes')
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  const codes = tokens.filter((t) => /^\d+$/.test(t)).map(Number);
  const retryOn = tokens.filter((t) => !/^\d+$/.test(t));
  if (codes.length > 0 && !retryOn.includes('retriable-status-codes')) retryOn.push('retriable-status-codes');
  return {
    attempts,
    retryOn,
    retriableStatusCodes: codes,
    backoffBaseMs: r.backoff ? parseIstioDuration(r.backoff) : 25,
    avoidPreviousHosts: r.retryIgnorePreviousHosts ?? true,
    retryRemoteLocalities: r.retryRemoteLocalities ?? false,
  };
}

function faultPolicy(rule: HttpRouteVs): FaultPolicy | undefined {
  const f = rule.fault;
  if (!f) return undefined;
  const delay = f.delay?.fixedDelay
    ? {
        ms: parseIstioDuration(f.delay.fixedDelay),
        // Unset percentage means no fault (Istio); the deprecated integer `percent` still counts.
        fraction: f.delay.percentage ? fraction(f.delay.percentage, 0) : (f.delay.percent ?? 0) / 100,
      }
    : undefined;
  const abort = f.abort
    ? {
        httpStatus: f.abort.httpStatus ?? 200,
        grpcStatus: f.abort.grpcStatus ? (GRPC_CODES[f.abort.grpcStatus.toUpperCase()] ?? 2) : undefined,
        fraction: fraction(f.abort.percentage, 0),
      }
    : undefined;
  return { delay, abort };
}

function corsPolicy(rule: HttpRouteVs, field: string): CorsPolicy | undefined {
  const p = rule.corsPolicy;
  if (!p) return undefined;
  const origins = [
    ...(p.allowOrigins ?? []).map((o, k) => istioStringMatch(o, `${field}.corsPolicy.allowOrigins[${k}]`)),
    ...(p.allowOrigin ?? []).map((o) =>
      o === '*'
        ? { type: 'Present' as const, value: '', ignoreCase: false, regex: undefined }
        : { type: 'Exact' as const, value: o, ignoreCase: false, regex: undefined },
    ),
  ];
  return {
    allowOrigins: origins,
    allowMethods: p.allowMethods ?? [],
    allowHeaders: p.allowHeaders ?? [],
    exposeHeaders: p.exposeHeaders ?? [],
    maxAgeSeconds: p.maxAge ? Math.round(parseIstioDuration(p.maxAge) / 1000) : undefined,
    allowCredentials: p.allowCredentials ?? false,
    unmatchedPreflights: p.unmatchedPreflights === 'IGNORE' ? 'IGNORE' : 'FORWARD',
  };
}

export function compileVsTcp(
  vs: Resource<VirtualService>,
  svc: ServiceRecord,
  port: number,
  c: VsContext,
): TcpBackends | undefined {
  const rules = vs.spec.spec.tcp ?? [];
  const i = rules.findIndex(
    (r) => !r.match?.length || r.match.some((m) => m.port == null || m.port === port),
  );
  const rule = rules[i];
  if (!rule) return undefined;
  const s: VsScope = { vs, svc, port, c };
  const backends = vsBackends(rule.route ?? [], s, (k) => `spec.tcp[${i}].route[${k}].destination`);
  return {
    ref: { ...routeRef('VirtualService', vs, i, undefined), display: `${vs.namespace}.${vs.name}.tcp.${i}` },
    backends,
    totalWeight: backends.reduce((sum, b) => sum + b.weight, 0),
  };
}

function warn(c: VsContext, vs: Resource, field: string, text: string): void {
  c.messages.push({
    severity: 'warning',
    message: `${vs.origin}: VirtualService ${vs.namespace}/${vs.name}: ${field}: ${text}`,
    origin: vs.origin,
    kind: 'VirtualService',
    namespace: vs.namespace,
    name: vs.name,
    field,
  });
}
