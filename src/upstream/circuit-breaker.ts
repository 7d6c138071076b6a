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
export type OverflowKind = 'requests' | 'pending' | 'retries';

export interface ClusterCounts {
  readonly requests: number;
  readonly pending: number;
  readonly retries: number;
}

interface Counters {
  requests: number;
  /** HTTP/1 requests waiting for a connection: queued behind maxConnections (see tryAcquireRequest). */
  pending: number;
  retries: number;
  /** HTTP/1 requests holding a connection (one request per HTTP/1 connection). */
  http1Active: number;
  /** Who waits for an HTTP/1 connection, first come first served. */
  readonly waiting: Array<() => void>;
}

export class CircuitBreakers {
  readonly #clusters = new Map<string, Counters>();
  readonly #onOverflow: ((cluster: string, kind: OverflowKind) => void) | undefined;

  constructor(opts: { onOverflow?: (cluster: string, kind: OverflowKind) => void } = {}) {
    this.#onOverflow = opts.onOverflow;
  }

  /**
   * One upstream request (each attempt, retries included, as Envoy counts them). Checks
   * http2MaxRequests (max_requests). An HTTP/1 connection carries one request at a time, so with
   * maxConnections set at most that many HTTP/1 requests of the cluster are in flight: the next
   * ones wait in a queue of at most http1MaxPendingRequests (Envoy's pending requests), and the one
   * after overflows. A queued request is handed a Promise that resolves when a connection frees,
   * or rejects with `signal`'s reason when the request is abandoned first.
   */
  tryAcquireRequest(
    cluster: Cluster,
    protocol: UpstreamProtocol = 'http2',
    signal?: AbortSignal,
  ): Release | Overflow | Promise<Release> {
    const c = this.#counters(cluster.name);
    const pool = cluster.policy.connectionPool;
    if (c.requests >= pool.http2MaxRequests) return this.#overflow(cluster.name, 'requests');
    if (protocol !== 'http1') {
      c.requests++;
      return requestRelease(c);
    }
    if (c.http1Active < pool.maxConnections && c.waiting.length === 0) return admitHttp1(c);
    if (c.pending >= pool.http1MaxPendingRequests) return this.#overflow(cluster.name, 'pending');
    c.pending++;
    return new Promise<Release>((resolve, reject) => {
      const onAbort = (): void => {
        const i = c.waiting.indexOf(wake);
        if (i >= 0) c.waiting.splice(i, 1);
        c.pending--;
        reject(signal?.reason ?? new Error('request abandoned while waiting for a connection'));
      };
      const wake = (): void => {
        signal?.removeEventListener('abort', onAbort);
        c.pending--;
        resolve(admitHttp1(c));
      };
      if (signal?.aborted) {
        c.pending--;
        reject(signal.reason);
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      c.waiting.push(wake);
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
    return Math.max(
      budget.minRetryConcurrency,
      Math.floor((budget.percent / 100) * (c.requests + c.pending)),
    );
  }

  counts(cluster: string): ClusterCounts {
    const c = this.#clusters.get(cluster);
    return c
      ? { requests: c.requests, pending: c.pending, retries: c.retries }
      : { requests: 0, pending: 0, retries: 0 };
  }

  #counters(name: string): Counters {
    let c = this.#clusters.get(name);
    if (!c) {
      c = { requests: 0, pending: 0, retries: 0, http1Active: 0, waiting: [] };
      this.#clusters.set(name, c);
    }
    return c;
  }

  #overflow(cluster: string, kind: OverflowKind): Overflow {
    this.#onOverflow?.(cluster, kind);
    return 'overflow';
  }
}

// One closure per request slot (these run for every attempt).
function requestRelease(c: Counters): Release {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    c.requests--;
  };
}

function admitHttp1(c: Counters): Release {
  c.requests++;
  c.http1Active++;
  return http1Release(c);
}

function http1Release(c: Counters): Release {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    c.requests--;
    c.http1Active--;
    c.waiting.shift()?.();
  };
}

function once(fn: () => void): Release {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}
