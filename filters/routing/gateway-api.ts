// HTTPRoute, GRPCRoute and TCPRoute (Gateway API mesh, GAMMA) → route entries per bound Service
// port, plus the status conditions the Kubernetes source will write back (l7-semantics.md §4.1-4.8).
import { parseGatewayDuration } from '../../config/kinds/duration.ts';
import type { GrpcRoute, GrpcRouteMatch } from '../../config/kinds/grpc-route.ts';
import type {
  BackendRef,
  HeaderModifier,
  HttpRoute,
  HttpRouteFilter,
  HttpRouteMatch,
  HttpRouteRule,
  ParentRef,
} from '../../config/kinds/http-route.ts';
import type { ReferenceGrant } from '../../config/kinds/reference-grant.ts';
import type { TcpRoute } from '../../config/kinds/tcp-route.ts';
import type { AppProtocol } from '../../config/model.ts';
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
  configError,
  exact,
  forwardAction,
  fullMatchRegex,
  type HeaderOpsWithAuthority,
  headerOps,
  invalidRule,
  MATCH_ANY,
  mergeOps,
  RouteConfigError,
  regexMatch,
  routeRef,
} from './builders.ts';
import type { ClusterCatalog } from './clusters.ts';
import { MESH_DEFAULT_RETRY } from './defaults.ts';
import type {
  Backend,
  CorsPolicy,
  HeaderMatch,
  HeaderOps,
  PathMatch,
  PathRewrite,
  QueryParamMatch,
  RouteAction,
  RouteCondition,
  RouteEntry,
  RouteMatch,
  RouteParentStatus,
  RouteStatus,
  TcpBackends,
} from './model.ts';

export interface BoundPort {
  readonly port: number;
  readonly protocol: AppProtocol;
}

/** What the compiler needs to know about the world, and where results go. */
export interface GatewayApiInput {
  readonly catalog: ClusterCatalog;
  /** The bound ports of a Service, or undefined when it is not bound to this waypoint. */
  boundPorts(namespace: string, name: string): readonly BoundPort[] | undefined;
  readonly grants: readonly Resource<ReferenceGrant>[];
  /**
   * `ns/name` of the Services the route being compiled attaches to: a backendRef to its own parent
   * Service needs no ReferenceGrant (GAMMA consumer routes, GEP-1426).
   */
  readonly parentServices?: ReadonlySet<string>;
}

export interface HttpAttachment {
  readonly portKey: { namespace: string; name: string; port: number };
  /** undefined: producer route; else the consumer namespace whose clients it applies to. */
  readonly consumer: string | undefined;
  readonly entries: readonly RouteEntry[];
}

export interface TcpAttachment {
  readonly portKey: { namespace: string; name: string; port: number };
  readonly backends: TcpBackends;
}

const HTTP_PROTOCOLS: ReadonlySet<AppProtocol> = new Set(['http', 'http2', 'grpc', 'unknown']);
const TCP_PROTOCOLS: ReadonlySet<AppProtocol> = new Set(['tcp', 'tls', 'unknown']);
const GATEWAY_API_RETRY_ON = ['connect-failure', 'refused-stream', 'unavailable', 'cancelled'];

type AnyRoute =
  | { kind: 'HTTPRoute'; r: Resource<HttpRoute> }
  | { kind: 'GRPCRoute'; r: Resource<GrpcRoute> }
  | { kind: 'TCPRoute'; r: Resource<TcpRoute> };

/** Collects problems of one route for its status conditions. */
class RouteProblems {
  accepted: RouteCondition[] = [];
  resolved: RouteCondition[] = [];
  reject(reason: string, message: string): void {
    this.accepted.push({ type: 'Accepted', status: 'False', reason, message });
  }
  unresolved(reason: string, message: string): void {
    this.resolved.push({ type: 'ResolvedRefs', status: 'False', reason, message });
  }
}

export function compileGatewayRoutes(
  routes: readonly AnyRoute[],
  input: GatewayApiInput,
): { http: HttpAttachment[]; tcp: TcpAttachment[]; statuses: RouteStatus[] } {
  const out: Attachments = { http: [], tcp: [] };
  const statuses: RouteStatus[] = [];
  for (const route of routes) {
    const status = compileRoute(route, input, out);
    if (status) statuses.push(status);
  }
  return { ...out, statuses };
}

interface Attachments {
  readonly http: HttpAttachment[];
  readonly tcp: TcpAttachment[];
}

/** A route's rules, compiled once whatever the number of parents. */
type CompiledRules =
  | { readonly kind: 'http'; readonly entries: readonly RouteEntry[] }
  | { readonly kind: 'tcp'; readonly backends: TcpBackends };

/** One route attached to each parent this waypoint serves; undefined when it names none of them. */
function compileRoute(route: AnyRoute, input: GatewayApiInput, out: Attachments): RouteStatus | undefined {
  const { r } = route;
  const problems = new RouteProblems();
  const routeInput: GatewayApiInput = { ...input, parentServices: parentServices(r) };
  const parents: RouteParentStatus[] = [];
  let rules: CompiledRules | undefined;
  for (const pr of r.spec.spec.parentRefs ?? []) {
    const parent = attachParent(pr, r.namespace, route.kind === 'TCPRoute', input);
    if (parent === 'not-ours') continue;
    const ref = {
      kind: pr.kind,
      namespace: pr.namespace ?? r.namespace,
      name: pr.name,
      port: pr.port ?? undefined,
    };
    if (typeof parent === 'string') {
      const rejected: RouteCondition = {
        type: 'Accepted',
        status: 'False',
        reason: 'NoMatchingParent',
        message: parent,
      };
      parents.push({ parentRef: ref, conditions: [rejected] });
      continue;
    }
    rules ??= compileRules(route, routeInput, problems);
    // A route in another namespace than its parent's is a consumer route for its own namespace.
    const consumer = ref.namespace === r.namespace ? undefined : r.namespace;
    for (const port of parent) {
      const portKey = { namespace: ref.namespace, name: ref.name, port };
      if (rules.kind === 'tcp') out.tcp.push({ portKey, backends: rules.backends });
      else out.http.push({ portKey, consumer, entries: rules.entries });
    }
    parents.push({ parentRef: ref, conditions: [] });
  }
  if (parents.length === 0) return undefined;
  const conditions = [problems.accepted[0] ?? ACCEPTED, problems.resolved[0] ?? RESOLVED];
  return {
    kind: route.kind,
    namespace: r.namespace,
    name: r.name,
    parents: parents.map((p) => (p.conditions.length > 0 ? p : { ...p, conditions })),
  };
}

const ACCEPTED: RouteCondition = {
  type: 'Accepted',
  status: 'True',
  reason: 'Accepted',
  message: 'Route was valid',
};
const RESOLVED: RouteCondition = {
  type: 'ResolvedRefs',
  status: 'True',
  reason: 'ResolvedRefs',
  message: 'All references resolved',
};

function compileRules(route: AnyRoute, input: GatewayApiInput, problems: RouteProblems): CompiledRules {
  switch (route.kind) {
    case 'TCPRoute':
      return { kind: 'tcp', backends: compileTcpRoute(route.r, input, problems) };
    case 'HTTPRoute':
      return { kind: 'http', entries: compileHttpRoute(route.r, input, problems) };
    case 'GRPCRoute':
      return { kind: 'http', entries: compileGrpcRoute(route.r, input, problems) };
  }
}

/**
 * `ns/name` of the Services a route attaches to: a backendRef to its own parent Service needs no
 * ReferenceGrant (GAMMA consumer routes, GEP-1426).
 */
function parentServices(r: AnyRoute['r']): ReadonlySet<string> {
  return new Set(
    (r.spec.spec.parentRefs ?? [])
      .filter((pr) => parentKind(pr) !== undefined)
      .map((pr) => `${pr.namespace ?? r.namespace}/${pr.name}`),
  );
}

const ISTIO_NETWORKING = 'networking.istio.io';

/** The kind of service a mesh parentRef names: a Service, or a ServiceEntry (accepted by Istio). */
function parentKind(pr: ParentRef): 'Service' | 'ServiceEntry' | undefined {
  if (pr.kind === 'Service' && (pr.group === '' || pr.group === 'core')) return 'Service';
  if (pr.kind === 'ServiceEntry' && pr.group === ISTIO_NETWORKING) return 'ServiceEntry';
  return undefined;
}

/** The bound ports a parentRef attaches to; a string says why it attaches to none; `not-ours` when it names something this waypoint does not serve. */
function attachParent(
  pr: ParentRef,
  routeNamespace: string,
  tcp: boolean,
  input: GatewayApiInput,
): readonly number[] | string | 'not-ours' {
  const ns = pr.namespace ?? routeNamespace;
  const kind = parentKind(pr);
  if (!kind) return 'not-ours';
  if (input.catalog.service(ns, pr.name)?.kind !== kind) return `${kind} ${ns}/${pr.name} not found`;
  const bound = input.boundPorts(ns, pr.name);
  if (!bound) return 'not-ours';
  const wanted = tcp ? TCP_PROTOCOLS : HTTP_PROTOCOLS;
  const ports = bound
    .filter((b) => (pr.port == null || b.port === pr.port) && wanted.has(b.protocol))
    .map((b) => b.port);
  if (ports.length === 0) {
    return pr.port != null
      ? `${kind} ${ns}/${pr.name} has no ${tcp ? 'TCP' : 'HTTP'} port ${pr.port} bound to this waypoint`
      : `${kind} ${ns}/${pr.name} has no ${tcp ? 'TCP' : 'HTTP'} port bound to this waypoint`;
  }
  return ports;
}

function compileHttpRoute(
  r: Resource<HttpRoute>,
  input: GatewayApiInput,
  problems: RouteProblems,
): RouteEntry[] {
  const out: RouteEntry[] = [];
  r.spec.spec.rules.forEach((rule, i) => {
    const ref = routeRef('HTTPRoute', r, i, rule.name);
    const scope = ruleScope(r.namespace, 'HTTPRoute', input, problems, `spec.rules[${i}]`, ref.display);
    const matches =
      rule.matches.length > 0 ? rule.matches : [{ path: { type: 'PathPrefix' as const, value: '/' } }];
    matches.forEach((m, j) => {
      let match = MATCH_ANY;
      try {
        match = httpMatch(m, `${scope.field}.matches[${j}]`);
        out.push({ match, ref, action: ruleAction(rule, match.path, scope) });
      } catch (err) {
        const action = rejectRule(configError(err), problems);
        // A rule that cannot be honoured answers 500 to what it matches (to everything left over
        // when its match is what is broken) rather than letting that traffic fall through.
        if (match !== MATCH_ANY || j === 0) out.push({ match, ref, action });
      }
    });
  });
  return out;
}

function compileGrpcRoute(
  r: Resource<GrpcRoute>,
  input: GatewayApiInput,
  problems: RouteProblems,
): RouteEntry[] {
  const out: RouteEntry[] = [];
  (r.spec.spec.rules ?? [{ matches: null, filters: null, backendRefs: null }]).forEach((rule, i) => {
    const ref = routeRef('GRPCRoute', r, i, rule.name);
    const scope = ruleScope(r.namespace, 'GRPCRoute', input, problems, `spec.rules[${i}]`, ref.display);
    const matches: (GrpcRouteMatch | undefined)[] = rule.matches?.length ? rule.matches : [undefined];
    let action: RouteAction;
    try {
      const asHttp = { ...rule, timeouts: null, retry: null, matches: [] } as unknown as HttpRouteRule;
      action = ruleAction(asHttp, undefined, scope);
    } catch (err) {
      action = rejectRule(configError(err), problems);
    }
    matches.forEach((m, j) => {
      try {
        out.push({ match: grpcMatch(m, `${scope.field}.matches[${j}]`), ref, action });
      } catch (err) {
        const e = configError(err);
        problems.reject('UnsupportedValue', `${e.field}: ${e.message}`);
      }
    });
  });
  return out;
}

/** A rule that cannot be honoured: the route is not Accepted and the rule answers 500. */
function rejectRule(err: RouteConfigError, problems: RouteProblems): RouteAction {
  problems.reject('UnsupportedValue', `${err.field}: ${err.message}`);
  return invalidRule(err);
}

function httpMatch(m: HttpRouteMatch, field: string): RouteMatch {
  const p = m.path;
  let path: PathMatch | undefined;
  if (p.type === 'RegularExpression') {
    path = {
      type: 'RegularExpression',
      value: p.value,
      ignoreCase: false,
      regex: fullMatchRegex(p.value, `${field}.path.value`),
    };
  } else {
    path = { type: p.type, value: p.value, ignoreCase: false, regex: undefined };
  }
  const headers = headerMatches(m.headers ?? [], `${field}.headers`);
  const queryParams: QueryParamMatch[] = [];
  const seenQ = new Set<string>();
  (m.queryParams ?? []).forEach((q, k) => {
    if (seenQ.has(q.name)) return;
    seenQ.add(q.name);
    queryParams.push({
      name: q.name,
      match:
        q.type === 'RegularExpression'
          ? regexMatch(q.value, `${field}.queryParams[${k}].value`)
          : exact(q.value),
    });
  });
  return {
    path,
    headers,
    queryParams,
    method: m.method ? exact(m.method) : undefined,
    authority: undefined,
    port: undefined,
  };
}

/** Header names are case-insensitive; of repeated names only the first entry counts. */
function headerMatches(
  list: readonly { type: string; name: string; value: string }[],
  field: string,
): HeaderMatch[] {
  const out: HeaderMatch[] = [];
  const seen = new Set<string>();
  list.forEach((h, k) => {
    const name = h.name.toLowerCase();
    if (seen.has(name)) return;
    seen.add(name);
    out.push({
      name,
      match: h.type === 'RegularExpression' ? regexMatch(h.value, `${field}[${k}].value`) : exact(h.value),
      invert: false,
    });
  });
  return out;
}

/** GRPCRoute method match → a path match (Istio's createGRPCURIMatch). */
function grpcMatch(m: GrpcRouteMatch | undefined, field: string): RouteMatch {
  const none = MATCH_ANY;
  if (!m) return none;
  const headers = headerMatches(m.headers ?? [], `${field}.headers`);
  const meth = m.method;
  let path: PathMatch | undefined;
  if (meth) {
    const svc = meth.service ?? undefined;
    const method = meth.method ?? undefined;
    if (meth.type === 'RegularExpression') {
      const source = `/${svc ?? '[^/]+'}/${method ?? '.+'}`;
      path = {
        type: 'RegularExpression',
        value: source,
        ignoreCase: false,
        regex: fullMatchRegex(source, `${field}.method`),
      };
    } else if (svc && method) {
      path = { type: 'Exact', value: `/${svc}/${method}`, ignoreCase: false, regex: undefined };
    } else if (svc) {
      path = { type: 'Prefix', value: `/${svc}/`, ignoreCase: false, regex: undefined };
    } else if (method) {
      const source = `/[^/]+/${escapeRegex(method)}`;
      path = {
        type: 'RegularExpression',
        value: source,
        ignoreCase: false,
        regex: fullMatchRegex(source, `${field}.method`),
      };
    }
  }
  return { ...none, path, headers };
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function modifier(m: HeaderModifier | null | undefined): HeaderOpsWithAuthority {
  if (!m) return { ops: NO_HEADER_OPS, authority: undefined };
  return headerOps(
    (m.set ?? []).map((h) => [h.name, h.value] as const),
    (m.add ?? []).map((h) => [h.name, h.value] as const),
    m.remove ?? [],
  );
}

/** Where a rule is compiled: its route's namespace and kind, the world, its field and route name. */
interface RuleScope {
  readonly namespace: string;
  readonly kind: 'HTTPRoute' | 'GRPCRoute';
  readonly input: GatewayApiInput;
  readonly problems: RouteProblems;
  readonly field: string;
  readonly routeName: string;
}

function ruleScope(
  namespace: string,
  kind: RuleScope['kind'],
  input: GatewayApiInput,
  problems: RouteProblems,
  field: string,
  routeName: string,
): RuleScope {
  return { namespace, kind, input, problems, field, routeName };
}

/** What a rule's filters ask for, merged in order. */
interface RuleFilters {
  requestHeaders: HeaderOps;
  responseHeaders: HeaderOps;
  authority: string | undefined;
  redirect: HttpRouteFilter['requestRedirect'];
  rewrite: HttpRouteFilter['urlRewrite'];
  cors: CorsPolicy | undefined;
  readonly mirrors: Mirror[];
}

const GRPC_FILTERS: ReadonlySet<string> = new Set([
  'RequestHeaderModifier',
  'ResponseHeaderModifier',
  'RequestMirror',
]);
const HTTP_FILTERS: ReadonlySet<string> = new Set([...GRPC_FILTERS, 'RequestRedirect', 'URLRewrite', 'CORS']);

function ruleAction(rule: HttpRouteRule, matchedPath: PathMatch | undefined, scope: RuleScope): RouteAction {
  const filters = ruleFilters(rule, scope);
  if (filters.redirect) return redirectAction(filters.redirect, filters, matchedPath, scope.field);
  const { rewrite, authority } = filters;
  return forwardAction(
    {
      backends: ruleBackends(rule, scope),
      requestHeaders: filters.requestHeaders,
      responseHeaders: filters.responseHeaders,
      rewrite:
        rewrite || authority
          ? {
              authority: rewrite?.hostname ?? authority,
              path: pathRewrite(rewrite?.path, matchedPath, `${scope.field}.filters.urlRewrite.path`),
            }
          : undefined,
      mirrors: filters.mirrors,
      cors: filters.cors,
      ...timeoutsAndRetry(rule),
      fault: undefined,
    },
    scope.routeName,
  );
}

function ruleFilters(rule: HttpRouteRule, scope: RuleScope): RuleFilters {
  const out: RuleFilters = {
    requestHeaders: NO_HEADER_OPS,
    responseHeaders: NO_HEADER_OPS,
    authority: undefined,
    redirect: undefined,
    rewrite: undefined,
    cors: undefined,
    mirrors: [],
  };
  const allowed = scope.kind === 'GRPCRoute' ? GRPC_FILTERS : HTTP_FILTERS;
  (rule.filters ?? []).forEach((f, k) => {
    const field = `${scope.field}.filters[${k}]`;
    if (!allowed.has(f.type))
      throw new RouteConfigError(`${field}.type`, `unsupported filter type ${f.type}`);
    applyFilter(f, out, field, scope);
  });
  return out;
}

function applyFilter(f: HttpRouteFilter, out: RuleFilters, field: string, scope: RuleScope): void {
  switch (f.type) {
    case 'RequestHeaderModifier': {
      const m = modifier(f.requestHeaderModifier);
      out.requestHeaders = mergeOps(out.requestHeaders, m.ops);
      out.authority ??= m.authority;
      return;
    }
    case 'ResponseHeaderModifier':
      out.responseHeaders = mergeOps(out.responseHeaders, modifier(f.responseHeaderModifier).ops);
      return;
    case 'RequestRedirect':
      out.redirect = f.requestRedirect;
      return;
    case 'URLRewrite':
      out.rewrite = f.urlRewrite;
      return;
    case 'RequestMirror': {
      const mirror = f.requestMirror && mirrorOf(f.requestMirror, `${field}.requestMirror`, scope);
      if (mirror) out.mirrors.push(mirror);
      return;
    }
    case 'CORS':
      if (f.cors) out.cors = corsOf(f.cors);
      return;
  }
}

/** A RequestMirror filter; undefined (and ResolvedRefs False) when its backend does not resolve. */
function mirrorOf(
  m: NonNullable<HttpRouteFilter['requestMirror']>,
  field: string,
  scope: RuleScope,
): Mirror | undefined {
  const b = resolveBackend(m.backendRef as BackendRef, scope.namespace, scope.kind, scope.input, 500);
  if (!b.cluster) {
    scope.problems.unresolved('BackendNotFound', `${field}.backendRef: ${b.invalid}`);
    return undefined;
  }
  const share = m.fraction
    ? m.fraction.numerator / m.fraction.denominator
    : m.percent != null
      ? m.percent / 100
      : 1;
  return { cluster: b.cluster, fraction: share };
}

function corsOf(c: NonNullable<HttpRouteFilter['cors']>): CorsPolicy {
  return {
    allowOrigins: (c.allowOrigins ?? []).map((o) =>
      o === '*' ? { type: 'Present', value: '', ignoreCase: false, regex: undefined } : exact(o),
    ),
    allowMethods: c.allowMethods ?? [],
    allowHeaders: c.allowHeaders ?? [],
    exposeHeaders: c.exposeHeaders ?? [],
    maxAgeSeconds: c.maxAge,
    allowCredentials: c.allowCredentials ?? false,
    unmatchedPreflights: 'FORWARD',
  };
}

/** A redirect or URL rewrite's path: ReplacePrefixMatch needs the rule's PathPrefix match. */
function pathRewrite(
  p: { type: string; replaceFullPath?: string | null; replacePrefixMatch?: string | null } | null | undefined,
  matchedPath: PathMatch | undefined,
  field: string,
): PathRewrite | undefined {
  if (!p) return undefined;
  if (p.type === 'ReplaceFullPath') return { kind: 'full', value: p.replaceFullPath ?? '/' };
  if (matchedPath?.type !== 'PathPrefix')
    throw new RouteConfigError(field, 'ReplacePrefixMatch needs a PathPrefix match');
  return {
    kind: 'prefix',
    prefix: matchedPath.value,
    value: p.replacePrefixMatch ?? '/',
    segmentAware: true,
  };
}

function redirectAction(
  redirect: NonNullable<HttpRouteFilter['requestRedirect']>,
  filters: RuleFilters,
  matchedPath: PathMatch | undefined,
  field: string,
): RouteAction {
  return {
    kind: 'redirect',
    status: redirect.statusCode ?? 302,
    scheme: redirect.scheme ?? undefined,
    hostname: redirect.hostname ?? undefined,
    // No port and a scheme: the scheme's default; neither: the port the client dialled.
    port: redirect.port ?? (redirect.scheme ? 'scheme-default' : 'service'),
    path: pathRewrite(redirect.path, matchedPath, `${field}.filters.requestRedirect.path`),
    responseHeaders: filters.responseHeaders,
    cors: filters.cors,
  };
}

/** The rule's backendRefs with their own header filters; weight 0 dropped, unresolved ones kept (500). */
function ruleBackends(rule: HttpRouteRule, scope: RuleScope): Backend[] {
  const backends: Backend[] = [];
  (rule.backendRefs ?? []).forEach((ref, k) => {
    const field = `${scope.field}.backendRefs[${k}]`;
    const ops = backendFilters(ref.filters ?? [], field);
    if (ref.weight === 0) return;
    const b = resolveBackend(ref, scope.namespace, scope.kind, scope.input, 500);
    if (b.invalid) scope.problems.unresolved(b.invalidReason ?? 'BackendNotFound', `${field}: ${b.invalid}`);
    backends.push({ ...b, weight: ref.weight, ...ops });
  });
  return backends;
}

/** A backendRef takes header modifiers only; any other filter makes the rule an error. */
function backendFilters(
  filters: readonly HttpRouteFilter[],
  field: string,
): { requestHeaders: HeaderOps; responseHeaders: HeaderOps } {
  let requestHeaders = NO_HEADER_OPS;
  let responseHeaders = NO_HEADER_OPS;
  filters.forEach((f, n) => {
    if (f.type === 'RequestHeaderModifier')
      requestHeaders = mergeOps(requestHeaders, modifier(f.requestHeaderModifier).ops);
    else if (f.type === 'ResponseHeaderModifier')
      responseHeaders = mergeOps(responseHeaders, modifier(f.responseHeaderModifier).ops);
    else
      throw new RouteConfigError(
        `${field}.filters[${n}].type`,
        `unsupported filter type ${f.type} on a backendRef`,
      );
  });
  return { requestHeaders, responseHeaders };
}

/** HTTPRoute timeouts and retry → Envoy's route timeout, per-try timeout and retry policy (§4.6, §4.7). */
function timeoutsAndRetry(rule: HttpRouteRule): { timeouts: Timeouts; retry: RetryPolicy } {
  const ms = (d: string | null | undefined): number | undefined => {
    if (!d) return undefined;
    const v = parseGatewayDuration(d);
    return v > 0 ? v : undefined;
  };
  const request = ms(rule.timeouts?.request);
  const backend = ms(rule.timeouts?.backendRequest);
  const r = rule.retry;
  let retry: RetryPolicy = MESH_DEFAULT_RETRY;
  if (r) {
    const attempts = r.attempts ?? 2;
    retry =
      attempts === 0
        ? NO_RETRY
        : {
            attempts,
            retryOn: r.codes?.length
              ? [...GATEWAY_API_RETRY_ON, 'retriable-status-codes']
              : GATEWAY_API_RETRY_ON,
            retriableStatusCodes: r.codes ?? [],
            backoffBaseMs: ms(r.backoff) ?? 25,
            avoidPreviousHosts: true,
            retryRemoteLocalities: false,
          };
  }
  const timeouts: Timeouts =
    request === undefined && backend === undefined
      ? NO_TIMEOUTS
      : r
        ? { requestMs: request, perTryMs: backend, idleMs: undefined }
        : // backendRequest without retry becomes the route timeout.
          { requestMs: backend ?? request, perTryMs: undefined, idleMs: undefined };
  return { timeouts, retry };
}

interface Resolved {
  readonly cluster: Backend['cluster'];
  readonly invalid: string | undefined;
  readonly invalidReason: string | undefined;
  readonly invalidStatus: number;
}

function resolveBackend(
  ref: { group: string; kind: string; name: string; namespace?: string | null; port?: number | null },
  routeNamespace: string,
  routeKind: string,
  input: GatewayApiInput,
  invalidStatus: number,
): Resolved {
  const bad = (reason: string, why: string): Resolved => ({
    cluster: undefined,
    invalid: why,
    invalidReason: reason,
    invalidStatus,
  });
  const istio = ref.group === ISTIO_NETWORKING;
  if (istio && ref.kind === 'Hostname') {
    // Istio's Hostname backend: a host of a ServiceEntry (or a Service's FQDN), no namespace.
    if (ref.port == null) return bad('UnsupportedValue', `backend Hostname ${ref.name} needs a port`);
    const rec = input.catalog.serviceByHost(ref.name, routeNamespace);
    if (!rec) return bad('BackendNotFound', `no Service or ServiceEntry has host ${ref.name}`);
    const found = input.catalog.cluster(rec.info.namespace, rec.info.name, ref.port);
    if (!found.ok) return bad('BackendNotFound', found.why);
    return { cluster: found.cluster, invalid: undefined, invalidReason: undefined, invalidStatus };
  }
  const kind =
    ref.group === '' && ref.kind === 'Service'
      ? 'Service'
      : istio && ref.kind === 'ServiceEntry'
        ? 'ServiceEntry'
        : undefined;
  if (!kind) return bad('InvalidKind', `backend kind ${ref.group || 'core'}/${ref.kind} is not supported`);
  if (kind === 'ServiceEntry' && ref.port == null)
    return bad('UnsupportedValue', `backend ServiceEntry ${ref.name} needs a port`);
  const ns = ref.namespace ?? routeNamespace;
  if (
    ns !== routeNamespace &&
    !input.parentServices?.has(`${ns}/${ref.name}`) &&
    !granted(input.grants, routeKind, routeNamespace, ns, ref.name, ref.group, kind)
  ) {
    return bad(
      'RefNotPermitted',
      `no ReferenceGrant in ${ns} lets ${routeKind}s of ${routeNamespace} refer to ${kind} ${ref.name}`,
    );
  }
  if (input.catalog.service(ns, ref.name)?.kind !== kind)
    return bad('BackendNotFound', `${kind} ${ns}/${ref.name} not found`);
  const found = input.catalog.cluster(ns, ref.name, ref.port ?? 0);
  if (!found.ok) return bad('BackendNotFound', found.why);
  return { cluster: found.cluster, invalid: undefined, invalidReason: undefined, invalidStatus };
}

function granted(
  grants: readonly Resource<ReferenceGrant>[],
  kind: string,
  from: string,
  to: string,
  name: string,
  group: string,
  targetKind: string,
): boolean {
  return grants.some(
    (g) =>
      g.namespace === to &&
      g.spec.spec.from.some(
        (f) => f.group === 'gateway.networking.k8s.io' && f.kind === kind && f.namespace === from,
      ) &&
      g.spec.spec.to.some(
        (t) => t.group === group && t.kind === targetKind && (t.name == null || t.name === name),
      ),
  );
}

function compileTcpRoute(
  r: Resource<TcpRoute>,
  input: GatewayApiInput,
  problems: RouteProblems,
): TcpBackends {
  // One rule is all TCP can use (no matches); Istio takes the first.
  const rule = r.spec.spec.rules[0];
  const backends: Backend[] = [];
  rule?.backendRefs.forEach((ref, k) => {
    if (ref.weight === 0) return;
    const b = resolveBackend(ref, r.namespace, 'TCPRoute', input, 503);
    if (b.invalid)
      problems.unresolved(
        b.invalidReason ?? 'BackendNotFound',
        `spec.rules[0].backendRefs[${k}]: ${b.invalid}`,
      );
    backends.push({
      ...b,
      weight: ref.weight,
      requestHeaders: NO_HEADER_OPS,
      responseHeaders: NO_HEADER_OPS,
    });
  });
  return {
    ref: routeRef('TCPRoute', r, 0, rule?.name),
    backends,
    totalWeight: backends.reduce((s, b) => s + b.weight, 0),
  };
}
