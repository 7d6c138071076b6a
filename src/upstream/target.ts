// Where a request goes and under which rules: what routing decides and the upstream layers carry
// out. The router filter sets RequestContext.target; without it (pod-addressed traffic, or no
// routing filter) the request goes to its tunnel's own binding with the defaults below.
import type { Cluster } from './cluster.ts';

/** How a request's time is bounded (l7-semantics.md §4.6). Absent fields mean no limit. */
export interface Timeouts {
  /** Whole request, all retries and back-off included (route timeout). */
  readonly requestMs: number | undefined;
  /** Each attempt (perTryTimeout / HTTPRoute backendRequest with retry). */
  readonly perTryMs: number | undefined;
  /** A stream with no bytes either way for this long is reset (Envoy's stream idle timeout). */
  readonly idleMs: number | undefined;
}

export const NO_TIMEOUTS: Timeouts = Object.freeze({
  requestMs: undefined,
  perTryMs: undefined,
  idleMs: undefined,
});

/** Envoy's retry policy, as Istio writes it for the route (l7-semantics.md §4.7). */
export interface RetryPolicy {
  /** Retries after the first attempt; 0 disables. */
  readonly attempts: number;
  /** Envoy x-envoy-retry-on / x-envoy-retry-grpc-on tokens: `5xx`, `connect-failure`, `cancelled`, ... */
  readonly retryOn: readonly string[];
  /** With the `retriable-status-codes` token. */
  readonly retriableStatusCodes: readonly number[];
  /** Base back-off interval (default 25 ms; cap 10x). */
  readonly backoffBaseMs: number;
  /** Retry on another endpoint than the ones tried (Envoy's previous_hosts predicate). */
  readonly avoidPreviousHosts: boolean;
  readonly retryRemoteLocalities: boolean;
}

export const NO_RETRY: RetryPolicy = Object.freeze({
  attempts: 0,
  retryOn: Object.freeze([]) as readonly string[],
  retriableStatusCodes: Object.freeze([]) as readonly number[],
  backoffBaseMs: 25,
  avoidPreviousHosts: true,
  retryRemoteLocalities: false,
});

const NO_CODES = Object.freeze([]) as readonly number[];

// Istio's mesh default for a route without a retry field is routing's (filters/routing/defaults.ts):
// the layers apply whatever policy the route carries. The one below stays here: it is what the
// engine does for a request no filter routed (pod-addressed traffic, a chain without routing).

/** No route at all for the Service (Istio's default route): `reset-before-request` ×2; none for gRPC. */
export const NO_TARGET_RETRY: RetryPolicy = Object.freeze({
  attempts: 2,
  retryOn: Object.freeze(['reset-before-request']) as readonly string[],
  retriableStatusCodes: NO_CODES,
  backoffBaseMs: 25,
  avoidPreviousHosts: true,
  retryRemoteLocalities: false,
});

/** A fire-and-forget copy of the request to another cluster; its response is dropped. */
export interface Mirror {
  readonly cluster: Cluster;
  /** 0-1: share of requests mirrored. */
  readonly fraction: number;
}

export interface UpstreamTarget {
  readonly cluster: Cluster;
  readonly timeouts: Timeouts;
  readonly retry: RetryPolicy;
  readonly mirrors: readonly Mirror[];
  /** The route that chose it, for the access log's ROUTE_NAME: `ns.name.rule`. Absent: default route. */
  readonly routeName: string | undefined;
}
