// DestinationRule trafficPolicy → the cluster's TrafficPolicy, Istio's precedence: the rule's
// trafficPolicy, overridden field by field by its portLevelSettings for the port, then by the
// subset's trafficPolicy (and its portLevelSettings). Defaults are Istio's (l7-semantics.md §4.10,
// §5.3): effectively unlimited pools, LEAST_REQUEST, no ejection unless outlierDetection is set.
// Pool thresholds are per waypoint replica, as in Istio; the connection-pool-scope annotation makes
// them per waypoint by dividing them among the live replicas (src/upstream/README.md).

import type {
  ConnectionPoolSpec,
  DestinationRule,
  LoadBalancerSpec,
  OutlierDetectionSpec,
  SubsetSpec,
  TrafficPolicySpec,
} from '../../config/kinds/destination-rule.ts';
import { parseIstioDuration } from '../../config/kinds/duration.ts';
import type { Resource } from '../../config/resource.ts';
import {
  type ConnectionPoolPolicy,
  DEFAULT_CONNECTION_POOL,
  DEFAULT_TRAFFIC_POLICY,
  type LoadBalancerPolicy,
  type OutlierDetectionPolicy,
  type RetryBudgetPolicy,
  type TrafficPolicy,
  UNLIMITED,
} from '../../src/upstream/cluster.ts';

/** `replica` (default, Istio's meaning) or `waypoint`: the DestinationRule's pool limits are for all replicas. */
export const CONNECTION_POOL_SCOPE_ANNOTATION = 'waypoint.node-waypoint.io/connection-pool-scope';
const SCOPES = ['replica', 'waypoint'];

type Warn = (text: string, field: string) => void;

interface Layer {
  readonly spec: TrafficPolicySpec | null | undefined;
  readonly field: string;
}

export function trafficPolicy(
  dr: Resource<DestinationRule> | undefined,
  port: number,
  subset: SubsetSpec | undefined,
  warn: Warn,
  replicas = 1,
): TrafficPolicy {
  if (!dr) return DEFAULT_TRAFFIC_POLICY;
  const layers: Layer[] = [];
  const top = dr.spec.spec.trafficPolicy;
  layers.push({ spec: top, field: 'spec.trafficPolicy' });
  pushPortLevel(layers, top, port, 'spec.trafficPolicy');
  if (subset) {
    const i = dr.spec.spec.subsets?.indexOf(subset) ?? -1;
    const base = `spec.subsets[${i}].trafficPolicy`;
    layers.push({ spec: subset.trafficPolicy, field: base });
    pushPortLevel(layers, subset.trafficPolicy, port, base);
  }
  const pick = <K extends 'loadBalancer' | 'connectionPool' | 'outlierDetection'>(key: K) => {
    let found: { value: NonNullable<TrafficPolicySpec[K]>; field: string } | undefined;
    for (const l of layers) {
      const v = l.spec?.[key];
      if (v != null) found = { value: v as NonNullable<TrafficPolicySpec[K]>, field: `${l.field}.${key}` };
    }
    return found;
  };
  const lb = pick('loadBalancer');
  const pool = pick('connectionPool');
  const outlier = pick('outlierDetection');
  const budget = subset?.trafficPolicy?.retryBudget ?? top?.retryBudget;
  const scoped = poolScope(dr, warn) === 'waypoint' && replicas > 1;
  const poolPolicy = pool ? connectionPool(pool.value) : DEFAULT_CONNECTION_POOL;
  return {
    loadBalancer: lb ? loadBalancer(lb.value, lb.field, warn) : DEFAULT_TRAFFIC_POLICY.loadBalancer,
    connectionPool: scoped ? dividePool(poolPolicy, replicas) : poolPolicy,
    outlierDetection: outlier ? outlierDetection(outlier.value) : undefined,
    retryBudget: budget ? retryBudget(budget) : undefined,
  };
}

/** The annotation's value; an unknown one warns and means `replica`. */
function poolScope(dr: Resource<DestinationRule>, warn: Warn): 'replica' | 'waypoint' {
  const annotations = (dr.spec.metadata as { annotations?: Record<string, unknown> | null }).annotations;
  const value = annotations?.[CONNECTION_POOL_SCOPE_ANNOTATION];
  if (value === undefined || value === null) return 'replica';
  if (typeof value === 'string' && SCOPES.includes(value)) return value as 'replica' | 'waypoint';
  warn(
    `${CONNECTION_POOL_SCOPE_ANNOTATION} is ${JSON.stringify(value)}, not one of ${SCOPES.join(', ')}; using replica (limits per waypoint replica)`,
    `metadata.annotations["${CONNECTION_POOL_SCOPE_ANNOTATION}"]`,
  );
  return 'replica';
}

/**
 * This replica's share of waypoint-wide thresholds: ceil(limit / replicas), at least 1; unlimited
 * stays unlimited. Approximate: it assumes each replica sees an even share of the traffic.
 */
export function dividePool(pool: ConnectionPoolPolicy, replicas: number): ConnectionPoolPolicy {
  const share = (v: number): number => (v >= UNLIMITED ? v : Math.max(1, Math.ceil(v / replicas)));
  return {
    ...pool,
    maxConnections: share(pool.maxConnections),
    http1MaxPendingRequests: share(pool.http1MaxPendingRequests),
    http2MaxRequests: share(pool.http2MaxRequests),
    maxRetries: share(pool.maxRetries),
  };
}

function pushPortLevel(
  layers: Layer[],
  spec: TrafficPolicySpec | null | undefined,
  port: number,
  base: string,
): void {
  const list = spec?.portLevelSettings ?? [];
  const i = list.findIndex((p) => p.port?.number === port);
  if (i >= 0) layers.push({ spec: list[i] as TrafficPolicySpec, field: `${base}.portLevelSettings[${i}]` });
}

function loadBalancer(spec: LoadBalancerSpec, field: string, warn: Warn): LoadBalancerPolicy {
  const h = spec.consistentHash;
  if (h) {
    const key = h.httpHeaderName
      ? { kind: 'header' as const, name: h.httpHeaderName.toLowerCase() }
      : h.httpCookie
        ? {
            kind: 'cookie' as const,
            name: h.httpCookie.name,
            path: h.httpCookie.path ?? undefined,
            ttlMs: h.httpCookie.ttl ? parseIstioDuration(h.httpCookie.ttl) : undefined,
          }
        : h.useSourceIp
          ? { kind: 'sourceIp' as const }
          : { kind: 'queryParameter' as const, name: h.httpQueryParameterName ?? '' };
    return h.maglev
      ? { kind: 'CONSISTENT_HASH', key, algorithm: 'maglev', tableSize: h.maglev.tableSize || 65537 }
      : {
          kind: 'CONSISTENT_HASH',
          key,
          algorithm: 'ringHash',
          tableSize: h.ringHash?.minimumRingSize || h.minimumRingSize || 1024,
        };
  }
  switch (spec.simple) {
    case 'ROUND_ROBIN':
      return { kind: 'ROUND_ROBIN' };
    case 'RANDOM':
      return { kind: 'RANDOM' };
    case 'PASSTHROUGH':
      warn(
        'PASSTHROUGH has no meaning at a waypoint (it sends to Service endpoints); using LEAST_REQUEST',
        `${field}.simple`,
      );
      return { kind: 'LEAST_REQUEST' };
    default:
      // LEAST_CONN is LEAST_REQUEST's old name; UNSPECIFIED is the default.
      return { kind: 'LEAST_REQUEST' };
  }
}

function connectionPool(spec: ConnectionPoolSpec): ConnectionPoolPolicy {
  const d = DEFAULT_CONNECTION_POOL;
  const positive = (v: number | null | undefined, dflt: number): number => (v ? v : dflt);
  const duration = (v: string | null | undefined, dflt: number): number => {
    const ms = v ? parseIstioDuration(v) : 0;
    return ms > 0 ? ms : dflt;
  };
  return {
    maxConnections: positive(spec.tcp?.maxConnections, d.maxConnections),
    connectTimeoutMs: duration(spec.tcp?.connectTimeout, d.connectTimeoutMs),
    http1MaxPendingRequests: positive(spec.http?.http1MaxPendingRequests, d.http1MaxPendingRequests),
    http2MaxRequests: positive(spec.http?.http2MaxRequests, d.http2MaxRequests),
    maxRequestsPerConnection: spec.http?.maxRequestsPerConnection ?? 0,
    maxRetries: positive(spec.http?.maxRetries, d.maxRetries),
    idleTimeoutMs: duration(spec.http?.idleTimeout ?? spec.tcp?.idleTimeout, d.idleTimeoutMs),
  };
}

/** Envoy's defaults, as Istio writes them once outlierDetection is present (§5.3). */
function outlierDetection(spec: OutlierDetectionSpec): OutlierDetectionPolicy {
  const ms = (v: string | null | undefined, dflt: number): number => (v ? parseIstioDuration(v) : dflt);
  return {
    consecutive5xxErrors: spec.consecutive5xxErrors ?? spec.consecutiveErrors ?? 5,
    consecutiveGatewayErrors: spec.consecutiveGatewayErrors ?? 0,
    consecutiveLocalOriginFailures: spec.consecutiveLocalOriginFailures ?? 0,
    splitExternalLocalOriginErrors: spec.splitExternalLocalOriginErrors ?? false,
    intervalMs: ms(spec.interval, 10_000),
    baseEjectionTimeMs: ms(spec.baseEjectionTime, 30_000),
    maxEjectionTimeMs: 300_000,
    maxEjectionPercent: spec.maxEjectionPercent ?? 10,
    minHealthPercent: spec.minHealthPercent ?? 0,
  };
}

function retryBudget(spec: NonNullable<TrafficPolicySpec['retryBudget']>): RetryBudgetPolicy {
  return {
    percent: spec.percent?.value ?? 20,
    minRetryConcurrency: spec.minRetryConcurrency ?? 3,
  };
}
