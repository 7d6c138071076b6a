// A cluster: the endpoints a routed request may go to (one Service port, or one DestinationRule
// subset of it) and the traffic policy that governs them (DestinationRule trafficPolicy, then
// portLevelSettings, then the subset's own; l7-semantics.md §4.10). Compiled once per snapshot by
// the routing filter; read by the upstream layers (load balancing, circuit breaking, ejection).
import type { AppProtocol, Endpoint, ServiceInfo } from '../../config/model.ts';

export interface Cluster {
  /** Istio's waypoint cluster name (clusterName below), for the access log. */
  readonly name: string;
  readonly service: ServiceInfo;
  /** The Service port (not the targetPort; each endpoint carries its own port). */
  readonly port: number;
  readonly protocol: AppProtocol;
  /** DestinationRule subset name, when the cluster is one. */
  readonly subset: string | undefined;
  /** Every endpoint of the port (of the subset), ready or not; selection filters by condition. */
  readonly endpoints: readonly Endpoint[];
  readonly policy: TrafficPolicy;
}

export type HashKey =
  | { readonly kind: 'header'; readonly name: string }
  | {
      readonly kind: 'cookie';
      readonly name: string;
      readonly path: string | undefined;
      readonly ttlMs: number | undefined;
    }
  | { readonly kind: 'sourceIp' }
  | { readonly kind: 'queryParameter'; readonly name: string };

export type LoadBalancerPolicy =
  | { readonly kind: 'LEAST_REQUEST' | 'ROUND_ROBIN' | 'RANDOM' }
  | {
      readonly kind: 'CONSISTENT_HASH';
      readonly key: HashKey;
      /** ringHash (default, minimumRingSize 1024) or maglev (tableSize 65537). */
      readonly algorithm: 'ringHash' | 'maglev';
      readonly tableSize: number;
    };

/** DestinationRule connectionPool; Istio's defaults are effectively unlimited (2^32-1). */
export interface ConnectionPoolPolicy {
  readonly maxConnections: number;
  readonly connectTimeoutMs: number;
  readonly http1MaxPendingRequests: number;
  readonly http2MaxRequests: number;
  /** 0: unlimited. */
  readonly maxRequestsPerConnection: number;
  readonly maxRetries: number;
  /** Idle upstream connections close after this (default 1 h). */
  readonly idleTimeoutMs: number;
}

/** DestinationRule outlierDetection, with Envoy's defaults filled in (l7-semantics.md §5.3). */
export interface OutlierDetectionPolicy {
  /** 0: off. */
  readonly consecutive5xxErrors: number;
  /** 0: off. */
  readonly consecutiveGatewayErrors: number;
  /** 0: off (only counted in split mode). */
  readonly consecutiveLocalOriginFailures: number;
  readonly splitExternalLocalOriginErrors: boolean;
  readonly intervalMs: number;
  readonly baseEjectionTimeMs: number;
  readonly maxEjectionTimeMs: number;
  /** 0-100. */
  readonly maxEjectionPercent: number;
  /** 0-100; below it the cluster panics and ignores ejections. Istio writes 0 (panic off). */
  readonly minHealthPercent: number;
}

export interface RetryBudgetPolicy {
  /** Share of active plus pending requests that may be retries, 0-100 (default 20). */
  readonly percent: number;
  readonly minRetryConcurrency: number;
}

export interface TrafficPolicy {
  readonly loadBalancer: LoadBalancerPolicy;
  readonly connectionPool: ConnectionPoolPolicy;
  readonly outlierDetection: OutlierDetectionPolicy | undefined;
  readonly retryBudget: RetryBudgetPolicy | undefined;
}

export const UNLIMITED = 2 ** 32 - 1;

export const DEFAULT_CONNECTION_POOL: ConnectionPoolPolicy = Object.freeze({
  maxConnections: UNLIMITED,
  connectTimeoutMs: 10_000,
  http1MaxPendingRequests: UNLIMITED,
  http2MaxRequests: UNLIMITED,
  maxRequestsPerConnection: 0,
  maxRetries: UNLIMITED,
  idleTimeoutMs: 3_600_000,
});

export const DEFAULT_TRAFFIC_POLICY: TrafficPolicy = Object.freeze({
  loadBalancer: Object.freeze({ kind: 'LEAST_REQUEST' as const }),
  connectionPool: DEFAULT_CONNECTION_POOL,
  outlierDetection: undefined,
  retryBudget: undefined,
});

/**
 * Istio's name for a waypoint's cluster of a Service port (its UPSTREAM_CLUSTER in access logs):
 * `inbound-vip|8080|http|echo.ns.svc.cluster.local`, `inbound-vip|8080|http/v1|...` for a subset,
 * `tcp` in place of `http` for TCP ports.
 */
export function clusterName(
  port: number,
  subset: string | undefined,
  hostname: string,
  protocol: AppProtocol,
): string {
  const kind = protocol === 'tcp' || protocol === 'tls' ? 'tcp' : 'http';
  return `inbound-vip|${port}|${subset ? `${kind}/${subset}` : kind}|${hostname}`;
}
