// The waypoint's overload limits and heap-based shedding, after Envoy's overload manager: fixed
// caps on connections, tunnels and pending requests, and a heap watcher that stops new tunnels and
// sheds new requests above a high-water mark until use falls below a low-water mark. Whoever
// refuses something past a limit counts it under the limit's name (waypoint_overload_refusals_total).
import { getHeapStatistics } from 'node:v8';

export interface OverloadLimits {
  /** Concurrent downstream HBONE (TLS) connections; over it a connection is closed at accept. */
  readonly maxConnections: number;
  /** CONNECT streams per HBONE connection (advertised as SETTINGS_MAX_CONCURRENT_STREAMS). */
  readonly maxTunnelsPerConnection: number;
  /** CONNECT tunnels across all connections; over it a CONNECT gets 503 overload_tunnels. */
  readonly maxTunnels: number;
  /** Requests waiting on an upstream response, in total; over it 503 overload_pending_requests. */
  readonly maxPendingRequests: number;
  /** Heap use (fraction of the limit) above which new tunnels and requests are shed. */
  readonly heapHighWater: number;
  /** Heap use below which shedding stops. */
  readonly heapLowWater: number;
  /** The heap limit the fractions are of; 0: V8's heap_size_limit. */
  readonly heapMaxBytes: number;
  readonly heapIntervalMs: number;
}

/**
 * Defaults. Istio's waypoint bounds downstream connections only through the overload manager's
 * global_downstream_max_connections (set by the proxy to a large value) and HTTP/2 streams at
 * ztunnel's 100..1000; these keep the same order of magnitude, well above normal load.
 */
export const DEFAULT_OVERLOAD_LIMITS: OverloadLimits = {
  maxConnections: 10_000,
  maxTunnelsPerConnection: 1000,
  maxTunnels: 50_000,
  maxPendingRequests: 10_000,
  heapHighWater: 0.9,
  heapLowWater: 0.8,
  heapMaxBytes: 0,
  heapIntervalMs: 1000,
};

/** The limits a refusal can be counted under (the label of waypoint_overload_refusals_total). */
export type OverloadLimit = 'connections' | 'tunnels' | 'pending_requests' | 'heap';

export interface HeapReading {
  readonly used: number;
  readonly limit: number;
}

export function v8HeapReading(): HeapReading {
  const s = getHeapStatistics();
  return { used: s.used_heap_size, limit: s.heap_size_limit };
}

export interface HeapShedderOptions {
  readonly highWater: number;
  readonly lowWater: number;
  /** 0: the reading's own limit (V8's heap_size_limit). */
  readonly maxBytes?: number;
  readonly intervalMs: number;
  readonly read?: () => HeapReading;
  readonly onChange?: (shedding: boolean, ratio: number) => void;
}

/** Samples the heap on an unref'd timer; `shedding` is true from above high water until below low water. */
export class HeapShedder {
  readonly #opts: HeapShedderOptions;
  readonly #read: () => HeapReading;
  #timer: NodeJS.Timeout | undefined;
  #shedding = false;
  #ratio = 0;

  constructor(opts: HeapShedderOptions) {
    if (!(opts.lowWater > 0 && opts.lowWater <= opts.highWater && opts.highWater <= 1))
      throw new RangeError(
        `heap marks: expected 0 < low (${opts.lowWater}) <= high (${opts.highWater}) <= 1`,
      );
    this.#opts = opts;
    this.#read = opts.read ?? v8HeapReading;
  }

  get shedding(): boolean {
    return this.#shedding;
  }

  /** Heap used over the limit at the last sample. */
  get ratio(): number {
    return this.#ratio;
  }

  start(): void {
    if (this.#timer) return;
    this.sample();
    this.#timer = setInterval(() => this.sample(), this.#opts.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One sample: enters or leaves the shedding state at the marks. */
  sample(): void {
    const r = this.#read();
    const limit = this.#opts.maxBytes || r.limit;
    this.#ratio = limit > 0 ? r.used / limit : 0;
    if (!this.#shedding && this.#ratio >= this.#opts.highWater) this.#set(true);
    else if (this.#shedding && this.#ratio < this.#opts.lowWater) this.#set(false);
  }

  #set(shedding: boolean): void {
    this.#shedding = shedding;
    this.#opts.onChange?.(shedding, this.#ratio);
  }
}
