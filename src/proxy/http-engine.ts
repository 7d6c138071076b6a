// The HTTP engine: one path for every request, whatever protocol it came in. Each request is an
// Exchange (exchange.ts): it builds the request context, runs the snapshot's filter chain, sends
// upstream through the layers, streams the response back with backpressure, and reports the outcome
// (filters' onComplete, metrics, access log; exchange-report.ts) exactly once. Every failure ends as
// the reason's local reply or a reset; none escapes.
import type { Snapshot } from '../../config/model.ts';
import type { AccessLog } from '../observe/access-log.ts';
import type { Logger } from '../observe/logger.ts';
import type { Metrics } from '../observe/metrics.ts';
import type { Tracing } from '../observe/tracing.ts';
import { FilterChain } from '../pipeline/chain.ts';
import type { TunnelInfo } from '../pipeline/context.ts';
import type { FilterContext, FilterFactory } from '../pipeline/filter.ts';
import type { Send } from '../upstream/types.ts';
import type { Downstream } from './downstream.ts';
import { Exchange } from './exchange.ts';
import { pinTunnel } from './live-tunnel.ts';

export interface HttpEngineOptions {
  readonly factories: readonly FilterFactory[];
  /** What each factory gets when a snapshot's chain is built (the filters' counters). */
  readonly filterContext?: FilterContext;
  readonly send: Send;
  readonly metrics: Metrics;
  readonly accessLog: AccessLog;
  readonly log: Logger;
  /** `ip:port` of the HBONE listener, for the access log's downstream-local field. */
  readonly localAddress: () => string;
  /** Request tracing; absent or off: no span and no work per request. */
  readonly tracing?: Tracing;
}

export class HttpEngine {
  readonly #opts: HttpEngineOptions;
  // One chain per snapshot, built on first use; snapshots are immutable, so is the chain.
  readonly #chains = new WeakMap<Snapshot, FilterChain>();
  #inFlight = 0;
  #idleWaiters: Array<() => void> = [];

  constructor(opts: HttpEngineOptions) {
    this.#opts = opts;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Resolves when no request is in flight. */
  idle(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  chainFor(snapshot: Snapshot): FilterChain {
    let chain = this.#chains.get(snapshot);
    if (!chain) {
      chain = FilterChain.build(this.#opts.factories, snapshot, this.#opts.log, this.#opts.filterContext);
      this.#chains.set(snapshot, chain);
    }
    return chain;
  }

  /** Handles one exchange to completion (exchange.ts); never throws, and its promise never rejects. */
  handle(ds: Downstream, liveTunnel: TunnelInfo): void {
    // The tunnel's binding follows the configuration (a keep-alive tunnel outlives snapshots);
    // the request pins the pair it starts with, read together in this tick.
    const tunnel = pinTunnel(liveTunnel);
    this.#inFlight++;
    const chain = this.chainFor(tunnel.snapshot);
    void new Exchange(this.#opts, chain, ds, tunnel, this.#exchangeDone).run();
  }

  readonly #exchangeDone = (): void => {
    this.#inFlight--;
    if (this.#inFlight === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    }
  };
}
