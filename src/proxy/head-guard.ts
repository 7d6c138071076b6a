// Slowloris protection for inner HTTP/1.x connections. Node enforces `headersTimeout` only on
// servers that listen(); tunnels are handed to the server directly, so a client sending one header
// byte a second held its tunnel forever. Here a request head must be complete within the timeout
// (Envoy's request_headers_timeout: 408, then the connection closes), counted from the tunnel's
// start or, on a keep-alive connection, from the first byte of the next request. And one client
// identity may hold only so many tunnels whose first head is still incomplete: past that, a new
// one is answered 503 overloaded at once, so a single workload cannot pile up half-open tunnels.
import type { Duplex } from 'node:stream';

export interface HeadGuardOptions {
  /** 0: no timeout. */
  readonly timeoutMs: number;
  /** Tunnels of one identity whose first request head is incomplete; 0: no bound. */
  readonly maxPendingPerIdentity: number;
}

export type HeadVerdict = 'timeout' | 'overflow';

/** One tunnel's watch: the dispatcher tells it when heads complete and responses finish. */
export interface HeadWatch {
  headComplete(): void;
  responseDone(): void;
  close(): void;
}

export class HeadGuard {
  readonly #opts: HeadGuardOptions;
  readonly #pending = new Map<string, number>();

  constructor(opts: HeadGuardOptions) {
    this.#opts = opts;
  }

  /**
   * Watches a new tunnel of `identity`; calls onFail at most once. Returns undefined when the
   * tunnel is over the identity's bound (onFail('overflow') has been called).
   */
  watch(stream: Duplex, identity: string, onFail: (v: HeadVerdict) => void): HeadWatch | undefined {
    const max = this.#opts.maxPendingPerIdentity;
    if (max > 0 && (this.#pending.get(identity) ?? 0) >= max) {
      onFail('overflow');
      return undefined;
    }
    this.#adjust(identity, 1);
    return new TunnelHeadWatch(stream, this.#opts.timeoutMs, onFail, () => this.#adjust(identity, -1));
  }

  /** Tunnels of `identity` whose first head is incomplete (for tests and metrics). */
  pending(identity: string): number {
    return this.#pending.get(identity) ?? 0;
  }

  #adjust(identity: string, by: number): void {
    const n = (this.#pending.get(identity) ?? 0) + by;
    if (n > 0) this.#pending.set(identity, n);
    else this.#pending.delete(identity);
  }
}

class TunnelHeadWatch implements HeadWatch {
  readonly #stream: Duplex;
  readonly #timeoutMs: number;
  readonly #onFail: (v: HeadVerdict) => void;
  /** Leaves the identity's pending count: once, at the first complete head or at close. */
  #release: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #inFlight = 0;
  #armed = false;
  readonly #onData = (): void => {
    if (this.#inFlight === 0 && !this.#armed) this.#arm();
  };

  constructor(stream: Duplex, timeoutMs: number, onFail: (v: HeadVerdict) => void, release: () => void) {
    this.#stream = stream;
    this.#timeoutMs = timeoutMs;
    this.#onFail = onFail;
    this.#release = release;
    this.#arm();
    // A keep-alive connection's next head starts with its first byte (idle time is not head time).
    stream.on('data', this.#onData);
  }

  headComplete(): void {
    this.#inFlight++;
    this.#disarm();
    this.#release?.();
    this.#release = undefined;
  }

  responseDone(): void {
    if (this.#inFlight > 0) this.#inFlight--;
  }

  close(): void {
    this.#disarm();
    clearTimeout(this.#timer);
    this.#stream.off('data', this.#onData);
    this.#release?.();
    this.#release = undefined;
  }

  // One timer per tunnel, re-armed with refresh() for each head (no Timeout per request); disarmed,
  // it may still fire once and does nothing.
  #arm(): void {
    if (this.#timeoutMs <= 0) return;
    this.#armed = true;
    if (this.#timer) this.#timer.refresh();
    else {
      this.#timer = setTimeout(() => this.#expired(), this.#timeoutMs);
      this.#timer.unref();
    }
  }

  #expired(): void {
    if (!this.#armed) return;
    this.#armed = false;
    // The tunnel is being closed: it no longer counts against its identity.
    this.close();
    this.#onFail('timeout');
  }

  #disarm(): void {
    this.#armed = false;
  }
}
