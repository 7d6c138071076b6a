// Circuit breaking: Envoy's per-cluster resource limits (l7-semantics.md §5.2; DestinationRule
// connectionPool and retryBudget, §4.10). Counters are keyed by cluster name so they survive
// snapshot swaps; limits are read from the cluster passed on each call, so a new policy applies
// at once. Like Envoy's, the counters are per process: each waypoint replica has its own.
import type { Cluster } from './cluster.ts';
import type { UpstreamProtocol } from './types.ts';

/** Gives the slot back; calling it again does nothing. */
export type Release = () => void;
export type Overflow = 'overflow';

/** Which limit overflowed, for Envoy's upstream_rq_pending_overflow / upstream_cx_overflow / ... */
export type OverflowKind = 'requests' | 'pending' | 'connections' | 'retries';

export interface ClusterCounts {
  readonly requests: number;
  readonly pending: number;
  readonly connections: number;
  readonly retries: number;
}

interface Counters {
  requests: number;
  /** HTTP/1 requests beyond maxConnections: waiting for a connection (see tryAcquireRequest). */
  pending: number;
  connections: number;
  retries: number;
}

export class CircuitBreakers {
  readonly #clusters = new Map<string, Counters>();
  readonly #onOverflow: ((cluster: string, kind: OverflowKind) => void) | undefined;

  constructor(opts: { onOverflow?: (cluster: string, kind: OverflowKind) => void } = {}) {
    this.#onOverflow = opts.onOverflow;
  }

  /**
   * One upstream request (each attempt, retries included, as Envoy counts them). Checks
   * http2MaxRequests (max_requests) and, for HTTP/1, http1MaxPendingRequests: an HTTP/1 connection
   * carries one request at a time, so requests beyond maxConnections are the ones waiting for a
   * connection. The pool that would tell us when a connection is really assigned lives below this
   * layer, so "pending" is approximated as max(0, active HTTP/1 requests − maxConnections).
   */
  tryAcquireRequest(cluster: Cluster, protocol: UpstreamProtocol = 'http2'): Release | Overflow {
    const c = this.#counters(cluster.name);
    const pool = cluster.policy.connectionPool;
    if (c.requests >= pool.http2MaxRequests) return this.#overflow(cluster.name, 'requests');
    const queued = protocol === 'http1' && c.requests >= pool.maxConnections;
    if (queued && c.pending >= pool.http1MaxPendingRequests) return this.#overflow(cluster.name, 'pending');
    c.requests++;
    if (queued) c.pending++;
    return once(() => {
      c.requests--;
      if (queued) c.pending--;
    });
  }

  /** One upstream connection (maxConnections), for the transports that open them. */
  tryAcquireConnection(cluster: Cluster): Release | Overflow {
    const c = this.#counters(cluster.name);
    if (c.connections >= cluster.policy.connectionPool.maxConnections)
      return this.#overflow(cluster.name, 'connections');
    c.connections++;
    return once(() => {
      c.connections--;
    });
  }

  /**
   * One retry in flight. With a retryBudget, Envoy's limit is
   * max(minRetryConcurrency, floor(percent / 100 × (active + pending requests))) and replaces
   * maxRetries; without one, maxRetries (max_retries) applies.
   */
  tryAcquireRetry(cluster: Cluster): Release | Overflow {
    const c = this.#counters(cluster.name);
    if (c.retries >= this.retryLimit(cluster)) return this.#overflow(cluster.name, 'retries');
    c.retries++;
    return once(() => {
      c.retries--;
    });
  }

  retryLimit(cluster: Cluster): number {
    const budget = cluster.policy.retryBudget;
    if (!budget) return cluster.policy.connectionPool.maxRetries;
    const c = this.#counters(cluster.name);
    // `pending` is a subset of `requests` here (see tryAcquireRequest), so active + pending is
    // just the request count.
    return Math.max(budget.minRetryConcurrency, Math.floor((budget.percent / 100) * c.requests));
  }

  counts(cluster: string): ClusterCounts {
    const c = this.#clusters.get(cluster);
    return c ? { ...c } : { requests: 0, pending: 0, connections: 0, retries: 0 };
  }

  #counters(name: string): Counters {
    let c = this.#clusters.get(name);
    if (!c) {
      c = { requests: 0, pending: 0, connections: 0, retries: 0 };
      this.#clusters.set(name, c);
    }
    return c;
  }

  #overflow(cluster: string, kind: OverflowKind): Overflow {
    this.#onOverflow?.(cluster, kind);
    return 'overflow';
  }
}

function once(fn: () => void): Release {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}
