// Counters and histograms for the high-volume istio_* series, registered in prom-client's registry
// (which only needs name, help, type and get()). prom-client hashes a child's labels again on every
// inc() and observe(); here a child is a plain record found once per label set (the caller caches
// it), so the per-request cost is an increment and, for a histogram, a bucket search.
import type { Registry } from 'prom-client';

type Labels = Record<string, string>;

interface MetricValue {
  value: number;
  labels: Labels | Record<string, string | number>;
  metricName?: string;
}

abstract class Family<C> {
  readonly name: string;
  readonly help: string;
  readonly aggregator = 'sum';
  readonly #labelNames: readonly string[];
  protected readonly children = new Map<string, { labels: Labels; child: C }>();

  constructor(name: string, help: string, labelNames: readonly string[], registry: Registry) {
    this.name = name;
    this.help = help;
    this.#labelNames = labelNames;
    registry.registerMetric(this as never);
  }

  /** The child for these label values (in labelNames order), made on first use. */
  labels(...values: string[]): C {
    const key = values.join('\u0000');
    let entry = this.children.get(key);
    if (!entry) {
      const labels: Labels = {};
      this.#labelNames.forEach((n, i) => {
        labels[n] = values[i] ?? '';
      });
      entry = { labels, child: this.make() };
      this.children.set(key, entry);
    }
    return entry.child;
  }

  protected abstract make(): C;
}

export interface CounterChild {
  inc(by?: number): void;
  readonly value: number;
}

export class SeriesCounter extends Family<CounterChild> {
  readonly type = 'counter';

  protected make(): CounterChild {
    return {
      value: 0,
      inc(by = 1) {
        (this as { value: number }).value += by;
      },
    };
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] } {
    const values = [...this.children.values()].map(({ labels, child }) => ({ labels, value: child.value }));
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

export interface HistogramChild {
  observe(v: number): void;
}

interface HistogramState extends HistogramChild {
  readonly counts: number[];
  sum: number;
  count: number;
}

export class SeriesHistogram extends Family<HistogramChild> {
  readonly type = 'histogram';
  readonly #buckets: readonly number[];

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    buckets: readonly number[],
    registry: Registry,
  ) {
    super(name, help, labelNames, registry);
    this.#buckets = buckets;
  }

  protected make(): HistogramChild {
    const buckets = this.#buckets;
    const state: HistogramState = {
      counts: new Array<number>(buckets.length).fill(0),
      sum: 0,
      count: 0,
      observe(v: number) {
        state.sum += v;
        state.count++;
        // The first bucket whose bound holds v (cumulated at collect time); above all: +Inf only.
        let lo = 0;
        let hi = buckets.length;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (v <= buckets[mid]!) hi = mid;
          else lo = mid + 1;
        }
        if (lo < buckets.length) state.counts[lo]!++;
      },
    };
    return state;
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] } {
    const values: MetricValue[] = [];
    for (const { labels, child } of this.children.values()) {
      const s = child as HistogramState;
      let cumulative = 0;
      this.#buckets.forEach((le, i) => {
        cumulative += s.counts[i]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { le, ...labels }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', ...labels }, value: s.count });
      values.push({ metricName: `${this.name}_sum`, labels, value: s.sum });
      values.push({ metricName: `${this.name}_count`, labels, value: s.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
