// The compiled rate-limit configuration: for each destination (bound Service, workload traffic, route
// rule) the rules that apply, with their selectors ready to match. Built once per snapshot by
// compile.ts; read by the filter (index.ts). Plain data plus matcher closures.

export const FILTER_NAME = 'rate-limit';

export type Unit = 'Second' | 'Minute' | 'Hour' | 'Day';

export const UNIT_SECONDS: Readonly<Record<Unit, number>> = {
  Second: 1,
  Minute: 60,
  Hour: 3_600,
  Day: 86_400,
};

/** A string condition; Distinct matches any present value and makes one bucket per value. */
export interface StringSelector {
  readonly type: 'Exact' | 'RegularExpression' | 'Distinct';
  readonly value: string;
  /** Anchored; set for RegularExpression. */
  readonly regex: RegExp | undefined;
  readonly invert: boolean;
}

export interface HeaderSelector extends StringSelector {
  /** Lower case. */
  readonly name: string;
}

export interface CidrSelector {
  readonly type: 'Exact' | 'Distinct';
  readonly cidr: string;
  readonly contains: (ip: string) => boolean;
}

export interface PathSelector {
  readonly type: 'Exact' | 'PathPrefix' | 'RegularExpression';
  readonly value: string;
  readonly regex: RegExp | undefined;
  readonly invert: boolean;
}

/** Every field must hold (AND); an absent field holds for any request. */
export interface ClientSelector {
  readonly headers: readonly HeaderSelector[];
  readonly sourceCIDR: CidrSelector | undefined;
  readonly sourcePrincipal: StringSelector | undefined;
  readonly sourceNamespace: StringSelector | undefined;
  /** Upper case; the request's method must be one of them. Empty: any method. */
  readonly methods: readonly string[];
  readonly path: PathSelector | undefined;
}

export interface RateLimitRule {
  /** `namespace/name` of the policy. */
  readonly policy: string;
  readonly type: 'Local' | 'Global';
  /** Position in spec.rateLimit.{local,global}.rules. */
  readonly index: number;
  /** Every selector must hold (AND); empty: every request. */
  readonly selectors: readonly ClientSelector[];
  /** What this replica enforces: the limit as written, or its share under scope Waypoint. */
  readonly requests: number;
  readonly unit: Unit;
  /** Local only. Waypoint: `limit.requests` is for all replicas together, divided among them. */
  readonly scope: 'Replica' | 'Waypoint';
  /** `limit.requests` as written. */
  readonly configuredRequests: number;
  /** Live replicas the limit was divided by (1 unless scope is Waypoint). */
  readonly replicas: number;
  /** True: one bucket for everything the policy targets; false: one per target (Service, route rule). */
  readonly shared: boolean;
  /** Send x-ratelimit-limit/remaining/reset (DRAFT_VERSION_03). */
  readonly headers: boolean;
}

/**
 * A rule attached to a destination. `scope` names the bucket's owner: `shared`, `Service ns/name`,
 * `HTTPRoute ns/name/rule`; undefined for a waypoint-wide (Gateway) rule that is not shared, whose
 * bucket is per destination Service (Envoy Gateway's per-route buckets, in waypoint terms).
 */
export interface AttachedRule {
  readonly rule: RateLimitRule;
  readonly scope: string | undefined;
}

export interface RateLimitConfig {
  /** Rules for traffic addressed to a bound Service, by `namespace/name`. */
  readonly services: Readonly<Record<string, readonly AttachedRule[]>>;
  /** Rules for workload-addressed traffic (waypoint-wide rules only). */
  readonly workload: readonly AttachedRule[];
  /** Rules attached to route rules, by routeKey(kind, ns, name, ruleName); `*` as ruleName: every rule. */
  readonly routes: Readonly<Record<string, readonly AttachedRule[]>>;
}

export function routeKey(kind: string, namespace: string, name: string, ruleName: string): string {
  return `${kind}/${namespace}/${name}/${ruleName}`;
}
