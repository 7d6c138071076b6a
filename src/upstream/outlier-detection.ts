// Outlier detection: passive ejection of endpoints that keep failing, with Envoy's arithmetic
// (l7-semantics.md §5.3; envoyproxy/envoy source/common/upstream/outlier_detection_impl.cc).
// State is per cluster name and per `ip:port`, so it survives snapshot swaps; it is per waypoint
// process (each replica counts only the requests it proxied, as each Envoy does).
import type { Endpoint } from '../../config/model.ts';
import type { Cluster, OutlierDetectionPolicy } from './cluster.ts';
import { hostKey } from './load-balancer.ts';

/** What happened to one attempt on one endpoint. */
export type Outcome =
  /** The response head arrived with this status. */
  | { readonly kind: 'status'; readonly status: number }
  /** Locally originated failure: connect failure, reset or termination before headers, timeout. */
  | { readonly kind: 'localOriginFailure' };

export type EjectionType =
  | 'consecutive_5xx'
  | 'consecutive_gateway_failure'
  | 'consecutive_local_origin_failure';

export interface EjectionEvent {
  readonly cluster: string;
  /** `ip:port`. */
  readonly host: string;
  readonly type: EjectionType;
  /** Times this host has been ejected so far (this one included). */
  readonly ejections: number;
  readonly durationMs: number;
}

export interface OutlierClock {
  now(): number;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

export const SYSTEM_CLOCK: OutlierClock = {
  now: () => performance.now(),
  setInterval(fn, ms) {
    const t = setInterval(fn, ms);
    t.unref();
    return t;
  },
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
};

export interface OutlierDetectorOptions {
  readonly clock?: OutlierClock;
  readonly onEject?: (e: EjectionEvent) => void;
  readonly onUnEject?: (e: { readonly cluster: string; readonly host: string }) => void;
  /** Overflow (max_ejection_percent reached), for the ejections_overflow counter. */
  readonly onOverflow?: (e: {
    readonly cluster: string;
    readonly host: string;
    readonly type: EjectionType;
  }) => void;
}

interface HostState {
  consecutive5xx: number;
  consecutiveGateway: number;
  consecutiveLocal: number;
  ejected: boolean;
  ejectedAt: number;
  ejectionMs: number;
  /** Envoy's ejectTimeBackoff: the multiplier of base_ejection_time. */
  backoff: number;
  ejections: number;
  lastUnejectedAt: number | undefined;
}

interface ClusterState {
  readonly name: string;
  policy: OutlierDetectionPolicy;
  /** The endpoint list the host set was last reconciled with. */
  endpoints: readonly Endpoint[];
  readonly hosts: Map<string, HostState>;
  ejectedCount: number;
  timer: unknown;
  timerMs: number;
}

export class OutlierDetector {
  readonly #clock: OutlierClock;
  readonly #opts: OutlierDetectorOptions;
  readonly #clusters = new Map<string, ClusterState>();
  #closed = false;

  constructor(opts: OutlierDetectorOptions = {}) {
    this.#clock = opts.clock ?? SYSTEM_CLOCK;
    this.#opts = opts;
  }

  /**
   * The candidates load balancing may use: those not ejected, or all of them when the healthy
   * share is below minHealthPercent (Envoy's panic mode). Empty: every candidate is ejected and
   * the cluster is not panicking, so the caller answers no_healthy_upstream.
   */
  healthy(cluster: Cluster, candidates: readonly Endpoint[]): readonly Endpoint[] {
    const policy = cluster.policy.outlierDetection;
    if (!policy) return candidates;
    const state = this.#state(cluster, policy);
    if (!state || state.ejectedCount === 0) return candidates;
    const now = this.#clock.now();
    const out: Endpoint[] = [];
    for (const e of candidates) {
      const key = hostKey(e);
      const h = state.hosts.get(key);
      // Un-ejected lazily as well as on the sweep, so an expired ejection never outlives its time.
      if (h?.ejected && now - h.ejectedAt >= h.ejectionMs) this.#uneject(state, key, h, now);
      if (!h?.ejected) out.push(e);
    }
    if (out.length === candidates.length) return candidates;
    // Panic (healthy_panic_threshold): below it, Envoy balances over all hosts, ejected or not.
    if (policy.minHealthPercent > 0 && (100 * out.length) / candidates.length < policy.minHealthPercent)
      return candidates;
    return out;
  }

  isEjected(cluster: string, host: string): boolean {
    return this.#clusters.get(cluster)?.hosts.get(host)?.ejected ?? false;
  }

  /** Records one attempt's outcome on `host` (`ip:port`); may eject it inline. */
  report(cluster: Cluster, host: string, outcome: Outcome): void {
    const policy = cluster.policy.outlierDetection;
    if (!policy || this.#closed) return;
    const state = this.#state(cluster, policy);
    if (!state) return;
    let h = state.hosts.get(host);
    if (!h) {
      // Only hosts of the cluster are tracked (a late report for a removed host is dropped).
      if (!cluster.endpoints.some((e) => hostKey(e) === host)) return;
      h = newHost();
      state.hosts.set(host, h);
    }
    if (outcome.kind === 'localOriginFailure') {
      if (policy.splitExternalLocalOriginErrors) {
        h.consecutiveLocal++;
        if (
          policy.consecutiveLocalOriginFailures > 0 &&
          h.consecutiveLocal === policy.consecutiveLocalOriginFailures
        ) {
          this.#eject(state, host, h, 'consecutive_local_origin_failure');
          h.consecutiveLocal = 0;
        }
        return;
      }
      // Without split mode Envoy maps a local-origin failure to a 503 (connect failure, reset) or
      // 504 (timeout): both are gateway errors and 5xx.
      this.#status(state, host, h, 503);
      return;
    }
    // A response head means the connection worked: in split mode that resets the local counter.
    if (policy.splitExternalLocalOriginErrors) h.consecutiveLocal = 0;
    this.#status(state, host, h, outcome.status);
  }

  /** Envoy's DetectorHostMonitorImpl::putHttpResponseCode. */
  #status(state: ClusterState, host: string, h: HostState, status: number): void {
    const policy = state.policy;
    if (status < 500 || status > 599) {
      h.consecutive5xx = 0;
      h.consecutiveGateway = 0;
      return;
    }
    if (status === 502 || status === 503 || status === 504) {
      h.consecutiveGateway++;
      if (policy.consecutiveGatewayErrors > 0 && h.consecutiveGateway === policy.consecutiveGatewayErrors) {
        this.#eject(state, host, h, 'consecutive_gateway_failure');
        h.consecutiveGateway = 0;
      }
    } else {
      h.consecutiveGateway = 0;
    }
    h.consecutive5xx++;
    if (policy.consecutive5xxErrors > 0 && h.consecutive5xx === policy.consecutive5xxErrors) {
      this.#eject(state, host, h, 'consecutive_5xx');
      h.consecutive5xx = 0;
    }
  }

  #eject(state: ClusterState, host: string, h: HostState, type: EjectionType): void {
    // An already ejected host is left alone (Envoy's onConsecutiveErrorWorker).
    if (h.ejected) return;
    const policy = state.policy;
    // Envoy's DetectorImpl::ejectHost: eject only while 100 × (ejected + 1) / hosts stays within
    // max_ejection_percent. With always_eject_one_host (not set by Istio) one host could always
    // go; without it a small cluster may eject none (10% of 5 hosts is none). Envoy counts every
    // host of the cluster, ready or not.
    const hosts = Math.max(1, state.endpoints.length);
    const percent = Math.min(100, policy.maxEjectionPercent);
    if ((100 * (state.ejectedCount + 1)) / hosts > percent) {
      this.#opts.onOverflow?.({ cluster: state.name, host, type });
      return;
    }
    const now = this.#clock.now();
    const base = policy.baseEjectionTimeMs;
    const max = policy.maxEjectionTimeMs;
    // The multiplier grows while it is below max/base + 1, so the time caps at max_ejection_time.
    if (h.backoff * base < max + base) h.backoff++;
    h.ejected = true;
    h.ejectedAt = now;
    h.ejectionMs = Math.min(base * h.backoff, max);
    h.ejections++;
    state.ejectedCount++;
    this.#arm(state);
    this.#opts.onEject?.({
      cluster: state.name,
      host,
      type,
      ejections: h.ejections,
      durationMs: h.ejectionMs,
    });
  }

  #uneject(state: ClusterState, host: string, h: HostState, now: number): void {
    h.ejected = false;
    h.lastUnejectedAt = now;
    // Envoy resets every consecutive counter on un-ejection so a near-threshold count does not
    // re-eject on very few new errors.
    h.consecutive5xx = 0;
    h.consecutiveGateway = 0;
    h.consecutiveLocal = 0;
    state.ejectedCount--;
    this.#opts.onUnEject?.({ cluster: state.name, host });
  }

  /** Envoy's onIntervalTimer: un-eject expired hosts, then decay the multiplier of healthy ones. */
  sweep(): void {
    const now = this.#clock.now();
    for (const state of this.#clusters.values()) this.#sweepCluster(state, now);
  }

  #sweepCluster(state: ClusterState, now: number): void {
    for (const [key, h] of state.hosts) {
      if (h.ejected && now - h.ejectedAt >= h.ejectionMs) this.#uneject(state, key, h, now);
    }
    let busy = state.ejectedCount > 0;
    for (const h of state.hosts.values()) {
      if (h.ejected) continue;
      if (
        h.backoff > 0 &&
        h.lastUnejectedAt !== undefined &&
        now - h.lastUnejectedAt >= state.policy.intervalMs
      )
        h.backoff--;
      if (h.backoff > 0) busy = true;
    }
    // Nothing ejected and nothing to decay: stop the timer until the next ejection.
    if (!busy) this.#disarm(state);
  }

  close(): void {
    this.#closed = true;
    for (const state of this.#clusters.values()) this.#disarm(state);
  }

  #state(cluster: Cluster, policy: OutlierDetectionPolicy): ClusterState | undefined {
    let state = this.#clusters.get(cluster.name);
    if (!state) {
      if (this.#closed) return undefined;
      state = {
        name: cluster.name,
        policy,
        endpoints: cluster.endpoints,
        hosts: new Map(),
        ejectedCount: 0,
        timer: undefined,
        timerMs: 0,
      };
      this.#clusters.set(cluster.name, state);
      return state;
    }
    if (state.policy !== policy) {
      state.policy = policy;
      if (state.timer !== undefined && state.timerMs !== policy.intervalMs) {
        this.#disarm(state);
        this.#arm(state);
      }
    }
    if (state.endpoints !== cluster.endpoints) {
      // A new snapshot: forget hosts that left the cluster (Envoy drops their monitors).
      state.endpoints = cluster.endpoints;
      const present = new Set(cluster.endpoints.map(hostKey));
      for (const [key, h] of state.hosts) {
        if (present.has(key)) continue;
        if (h.ejected) state.ejectedCount--;
        state.hosts.delete(key);
      }
    }
    return state;
  }

  #arm(state: ClusterState): void {
    if (state.timer !== undefined || this.#closed) return;
    state.timerMs = state.policy.intervalMs;
    state.timer = this.#clock.setInterval(() => this.#sweepCluster(state, this.#clock.now()), state.timerMs);
  }

  #disarm(state: ClusterState): void {
    if (state.timer === undefined) return;
    this.#clock.clearInterval(state.timer);
    state.timer = undefined;
  }
}

function newHost(): HostState {
  return {
    consecutive5xx: 0,
    consecutiveGateway: 0,
    consecutiveLocal: 0,
    ejected: false,
    ejectedAt: 0,
    ejectionMs: 0,
    backoff: 0,
    ejections: 0,
    lastUnejectedAt: undefined,
  };
}
