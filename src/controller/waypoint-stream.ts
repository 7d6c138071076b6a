// One waypoint's config stream on the controller. Changes are debounced (a burst is one push), and
// at most one push is unacknowledged: changes that arrive meanwhile only mark the stream dirty, and
// the next push is computed, when the ACK comes, from what the waypoint was sent. So a slow or
// stuck waypoint holds one push and a map of versions, never a queue, and blocks no other stream.
import type { Logger } from '../observe/logger.ts';
import type { Push, WireDocument } from './protocol.ts';
import { type SentState, sliceDelta } from './slice-delta.ts';
import type { SliceSource } from './slice-source.ts';
import type { StreamMetrics } from './stream-metrics.ts';

export interface StreamTiming {
  /** Quiet time after a change before pushing. */
  readonly debounceMs: number;
  /** A push waits at most this long after the first change of a burst, however busy. */
  readonly maxDelayMs: number;
}

interface InFlight {
  readonly version: string;
  readonly type: 'full' | 'delta';
  /** When the oldest change it carries happened (ms, performance.now). */
  readonly since: number;
}

export class WaypointStream {
  readonly #gateway: string;
  readonly #source: SliceSource;
  readonly #write: (push: Push) => void;
  readonly #timing: StreamTiming;
  readonly #metrics: StreamMetrics;
  readonly #log: Logger;
  #sent: SentState | undefined;
  #inFlight: InFlight | undefined;
  /** When the oldest change not yet pushed happened; undefined when nothing waits. */
  #dirtySince: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #closed = false;

  constructor(opts: {
    gateway: string;
    source: SliceSource;
    write: (push: Push) => void;
    timing: StreamTiming;
    metrics: StreamMetrics;
    log: Logger;
  }) {
    this.#gateway = opts.gateway;
    this.#source = opts.source;
    this.#write = opts.write;
    this.#timing = opts.timing;
    this.#metrics = opts.metrics;
    this.#log = opts.log;
  }

  /** Subscribes and sends the full snapshot at once (or as soon as the Gateway has a slice). */
  start(): void {
    this.#unsubscribe = this.#source.subscribe(this.#gateway, () => this.#changed());
    this.#dirtySince = performance.now();
    this.#flush();
  }

  /** The waypoint's answer to the push in flight; an answer to anything else is logged and ignored. */
  acknowledge(version: string, rejected: readonly string[]): void {
    const pushed = this.#inFlight;
    if (!pushed || pushed.version !== version) {
      this.#log.warn('config stream: acknowledgement of a version not in flight', {
        version,
        in_flight: pushed?.version ?? null,
      });
      return;
    }
    this.#inFlight = undefined;
    this.#metrics.pushLatency.labels(pushed.type).observe((performance.now() - pushed.since) / 1000);
    if (rejected.length > 0) {
      this.#metrics.nacks.labels(this.#gateway).inc();
      this.#metrics.rejectedResources.labels(this.#gateway).inc(rejected.length);
      for (const message of rejected)
        this.#log.warn('config stream: NACK: waypoint rejected a resource', { version, rejected: message });
    } else {
      this.#log.debug('config stream: ACK', { version });
    }
    // Changes that came while the push was in flight go now, unless their debounce still runs.
    if (this.#dirtySince !== undefined && this.#timer === undefined) this.#flush();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#unsubscribe?.();
  }

  get inFlight(): string | undefined {
    return this.#inFlight?.version;
  }

  #changed(): void {
    if (this.#closed) return;
    const now = performance.now();
    this.#dirtySince ??= now;
    clearTimeout(this.#timer);
    const wait = Math.max(
      0,
      Math.min(this.#timing.debounceMs, this.#dirtySince + this.#timing.maxDelayMs - now),
    );
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#flush();
    }, wait);
  }

  #flush(): void {
    if (this.#closed || this.#inFlight || this.#dirtySince === undefined) return;
    const slice = this.#source.slice(this.#gateway);
    // No slice yet (the Gateway is not known): the subscription calls again when it is.
    if (!slice) return;
    const delta = sliceDelta(this.#sent, slice);
    const type = this.#sent ? 'delta' : 'full';
    if (type === 'delta' && delta.upserts.length === 0 && delta.removes.length === 0) {
      this.#dirtySince = undefined;
      return;
    }
    let bytes = 0;
    const upserts: WireDocument[] = delta.upserts.map(([key, doc]) => {
      const json = Buffer.from(JSON.stringify(doc));
      bytes += json.length;
      return { key, resourceVersion: doc.metadata.resourceVersion ?? '', json };
    });
    this.#inFlight = { version: slice.version, type, since: this.#dirtySince };
    this.#dirtySince = undefined;
    this.#sent = delta.next;
    this.#write({ version: slice.version, full: type === 'full', upserts, removes: delta.removes });
    this.#metrics.pushes.labels(this.#gateway, type).inc();
    this.#metrics.sentBytes.labels(this.#gateway).inc(bytes);
    this.#metrics.sentObjects.labels(this.#gateway, 'upsert').inc(upserts.length);
    this.#metrics.sentObjects.labels(this.#gateway, 'remove').inc(delta.removes.length);
    this.#log.debug('config stream: pushed', {
      version: slice.version,
      type,
      upserts: upserts.length,
      removes: delta.removes.length,
      bytes,
    });
  }
}
