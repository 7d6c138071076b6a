// The compiled routing configuration: for each Service port bound to this waypoint, the ordered
// route entries (one per match, Istio's sort; l7-semantics.md §4.3) and what each does. Built once
// per snapshot from HTTPRoute, GRPCRoute, TCPRoute, VirtualService and DestinationRule; read by the
// routing filter and `explain`. Plain data plus compiled RegExps, so /config_dump can show it.
import type { Cluster } from '../../src/upstream/cluster.ts';
import type { Mirror, RetryPolicy, Timeouts, UpstreamTarget } from '../../src/upstream/target.ts';
import type { RouteIndex } from './route-index.ts';

/** A string match. `Prefix` is a plain string prefix (VirtualService); `Present` matches any value. */
export interface ValueMatch {
  readonly type: 'Exact' | 'Prefix' | 'RegularExpression' | 'Present';
  readonly value: string;
  readonly ignoreCase: boolean;
  /** Anchored (full match) for RegularExpression. */
  readonly regex: RegExp | undefined;
}

/**
 * Path match. PathPrefix is Gateway API's segment-aware prefix (`/v2` matches `/v2/x`, not
 * `/v2x`); Prefix is VirtualService's plain string prefix. The query string is never matched.
 */
export interface PathMatch {
  readonly type: 'Exact' | 'PathPrefix' | 'Prefix' | 'RegularExpression';
  readonly value: string;
  readonly ignoreCase: boolean;
  readonly regex: RegExp | undefined;
}

export interface HeaderMatch {
  /** Lower case. */
  readonly name: string;
  readonly match: ValueMatch;
  /** VirtualService withoutHeaders: matches when the header does not match (missing counts as ""). */
  readonly invert: boolean;
}

export interface QueryParamMatch {
  readonly name: string;
  readonly match: ValueMatch;
}

/** All fields ANDed; an absent field matches anything. */
export interface RouteMatch {
  readonly path: PathMatch | undefined;
  readonly headers: readonly HeaderMatch[];
  readonly queryParams: readonly QueryParamMatch[];
  readonly method: ValueMatch | undefined;
  readonly authority: ValueMatch | undefined;
  /** The Service port the client dialled (parentRef.port, VirtualService match.port). */
  readonly port: number | undefined;
}

export interface HeaderOps {
  readonly set: readonly (readonly [string, string])[];
  readonly add: readonly (readonly [string, string])[];
  readonly remove: readonly string[];
}

export type PathRewrite =
  | { readonly kind: 'full'; readonly value: string }
  /**
   * Replaces the matched prefix with `value`. Gateway API (segmentAware) replaces whole path
   * segments (`/` strips the prefix); VirtualService replaces the plain string prefix.
   */
  | {
      readonly kind: 'prefix';
      readonly prefix: string;
      readonly value: string;
      readonly segmentAware: boolean;
    }
  /** VirtualService uriRegexRewrite: RE2 with \1 back-references. */
  | { readonly kind: 'regex'; readonly regex: RegExp; readonly substitution: string };

export interface Rewrite {
  readonly authority: string | undefined;
  readonly path: PathRewrite | undefined;
}

export interface CorsPolicy {
  readonly allowOrigins: readonly ValueMatch[];
  readonly allowMethods: readonly string[];
  readonly allowHeaders: readonly string[];
  readonly exposeHeaders: readonly string[];
  readonly maxAgeSeconds: number | undefined;
  readonly allowCredentials: boolean;
  /** Preflights whose origin does not match: forwarded upstream (FORWARD, the default) or answered without CORS headers (IGNORE). */
  readonly unmatchedPreflights: 'FORWARD' | 'IGNORE';
}

export interface FaultPolicy {
  readonly delay: { readonly ms: number; readonly fraction: number } | undefined;
  readonly abort:
    | { readonly httpStatus: number; readonly grpcStatus: number | undefined; readonly fraction: number }
    | undefined;
}

export interface Backend {
  /** undefined: the reference does not resolve; its share of traffic gets 500 `cluster_not_found`. */
  readonly cluster: Cluster | undefined;
  readonly weight: number;
  /** Why the reference does not resolve, for the access log and status. */
  readonly invalid: string | undefined;
  /** The status its share of traffic gets when invalid: 500 for Gateway API, 503 for VirtualService. */
  readonly invalidStatus: number;
  readonly requestHeaders: HeaderOps;
  readonly responseHeaders: HeaderOps;
}

export interface ForwardAction {
  readonly kind: 'forward';
  /** Weight > 0 only; empty means 500 (no valid backend). */
  readonly backends: readonly Backend[];
  readonly totalWeight: number;
  /**
   * Built once at compile time, by backend (same order), so the router allocates nothing for them:
   * what it hands the upstream layers (undefined for a backend that does not resolve), and the
   * response header operations of rule and backend that are not empty.
   */
  readonly targets: readonly (UpstreamTarget | undefined)[];
  readonly responseOps: readonly (readonly HeaderOps[])[];
  /** `explain`'s line for a split: each backend and its share. */
  readonly shares: string;
  readonly requestHeaders: HeaderOps;
  readonly responseHeaders: HeaderOps;
  readonly rewrite: Rewrite | undefined;
  readonly mirrors: readonly Mirror[];
  readonly cors: CorsPolicy | undefined;
  readonly timeouts: Timeouts;
  readonly retry: RetryPolicy;
  readonly fault: FaultPolicy | undefined;
}

export interface RedirectAction {
  readonly kind: 'redirect';
  readonly status: number;
  readonly scheme: string | undefined;
  readonly hostname: string | undefined;
  /**
   * A number; `scheme-default` (omitted from Location); `service` (the Service port the client
   * dialled, omitted when it is the scheme's default: Gateway API with neither port nor scheme);
   * `host` (whatever port the Host header had: VirtualService without port fields).
   */
  readonly port: number | 'scheme-default' | 'service' | 'host';
  readonly path: PathRewrite | undefined;
  readonly responseHeaders: HeaderOps;
  readonly cors: CorsPolicy | undefined;
}

export interface DirectResponseAction {
  readonly kind: 'direct';
  readonly status: number;
  readonly body: string;
  readonly responseHeaders: HeaderOps;
  readonly cors: CorsPolicy | undefined;
  readonly fault: FaultPolicy | undefined;
}

/**
 * A rule that could not be compiled: its traffic gets 500 `route_rule_invalid` rather than falling
 * through to a later rule (Gateway API: requests a filter cannot process get an error response).
 */
export interface InvalidRuleAction {
  readonly kind: 'invalid';
  /** Which field of which rule, and why: the route status or configuration warning's text. */
  readonly why: string;
  readonly cors: undefined;
  readonly fault: undefined;
}

export type RouteAction = ForwardAction | RedirectAction | DirectResponseAction | InvalidRuleAction;

/** Which resource and rule an entry came from: for logs, metrics, status and policy attachment. */
export interface RouteRef {
  readonly kind: 'HTTPRoute' | 'GRPCRoute' | 'VirtualService' | 'TCPRoute';
  readonly namespace: string;
  readonly name: string;
  readonly ruleIndex: number;
  /** Gateway API rule `name` (sectionName), VirtualService http[].name. */
  readonly ruleName: string | undefined;
  /** For the access log's ROUTE_NAME: `ns.name.ruleName` or `ns.name.N`. */
  readonly display: string;
}

export interface RouteEntry {
  readonly match: RouteMatch;
  readonly ref: RouteRef;
  readonly action: RouteAction;
}

/** The HTTP routes of one Service port, for one audience (producer, or one consumer namespace). */
export interface HttpRouteTable {
  readonly source: 'Gateway API' | 'VirtualService';
  /** Sorted; the first entry that matches wins; no match is a 404. */
  readonly entries: readonly RouteEntry[];
  /** Which entries a path may match, so matching need not scan them all (route-index.ts). */
  readonly index: RouteIndex;
}

export interface TcpBackends {
  readonly ref: RouteRef;
  readonly backends: readonly Backend[];
  readonly totalWeight: number;
}

/** Everything routing knows about one bound Service port (key `ns/name:port`). */
export interface PortRouting {
  /** The port's own Service as a cluster, DestinationRule applied: where unrouted traffic goes. */
  readonly defaultCluster: Cluster;
  /** Istio's default route to defaultCluster: no timeout, `reset-before-request` retries. */
  readonly defaultTarget: UpstreamTarget;
  /** The same for gRPC requests, which Istio's default route does not retry. */
  readonly defaultGrpcTarget: UpstreamTarget;
  /** Routes of the Service's own namespace (producer routes) or the VirtualService; absent: default route. */
  readonly producer: HttpRouteTable | undefined;
  /** Consumer routes by client namespace (GAMMA): they replace producer routes for that namespace's clients. */
  readonly consumers: ReadonlyMap<string, HttpRouteTable>;
  /** TCPRoute / VirtualService tcp: weighted backends for a TCP port. */
  readonly tcp: TcpBackends | undefined;
}

/** Gateway API status, as the Kubernetes source would write it back (per parentRef). */
export interface RouteCondition {
  readonly type: 'Accepted' | 'ResolvedRefs';
  readonly status: 'True' | 'False';
  readonly reason: string;
  readonly message: string;
}

export interface RouteParentStatus {
  readonly parentRef: {
    readonly kind: string;
    readonly namespace: string;
    readonly name: string;
    readonly port: number | undefined;
  };
  readonly conditions: readonly RouteCondition[];
}

export interface RouteStatus {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly parents: readonly RouteParentStatus[];
}

export interface RoutingConfig {
  /** By `namespace/name:port` of the bound Service. */
  readonly ports: ReadonlyMap<string, PortRouting>;
  readonly statuses: readonly RouteStatus[];
}

export function portKey(namespace: string, name: string, port: number): string {
  return `${namespace}/${name}:${port}`;
}
