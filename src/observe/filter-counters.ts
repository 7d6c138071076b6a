// The counters filters declare through the filter contract (src/pipeline/filter.ts, FilterMetrics):
// one prom-client family per name, registered on its first declaration and shared by every later
// snapshot's filter. A child is found by walking a tree of its label values, so counting builds no
// key and hashes no labels (prom-client's labels() does both).
import client from 'prom-client';
import type { CounterSpec, FilterCounter, FilterMetrics } from '../pipeline/filter.ts';

export class FilterCounters implements FilterMetrics {
  readonly #registry: client.Registry;
  readonly #families = new Map<string, { readonly labels: string; readonly counter: FilterCounter }>();

  constructor(registry: client.Registry) {
    this.#registry = registry;
  }

  counter(spec: CounterSpec): FilterCounter {
    const labels = spec.labels.join(',');
    const known = this.#families.get(spec.name);
    if (known) {
      if (known.labels !== labels)
        throw new Error(`counter ${spec.name} declared with labels [${labels}], it has [${known.labels}]`);
      return known.counter;
    }
    const family = new client.Counter({
      name: spec.name,
      help: spec.help,
      labelNames: [...spec.labels],
      registers: [this.#registry],
    });
    for (const values of spec.zeros ?? []) family.labels(...values).inc(0);
    const counter = spec.labels.length === 0 ? { inc: () => family.inc() } : new CounterTree(family);
    this.#families.set(spec.name, { labels, counter });
    return counter;
  }
}

type Node = Map<string, Node | client.Counter.Internal>;

/** A family's children by label values, one map level per label. */
class CounterTree implements FilterCounter {
  readonly #family: client.Counter;
  readonly #root: Node = new Map();

  constructor(family: client.Counter) {
    this.#family = family;
  }

  inc(...values: string[]): void {
    let node = this.#root;
    const last = values.length - 1;
    for (let i = 0; i < last; i++) {
      let next = node.get(values[i]!) as Node | undefined;
      if (!next) {
        next = new Map();
        node.set(values[i]!, next);
      }
      node = next;
    }
    let child = node.get(values[last]!) as client.Counter.Internal | undefined;
    if (!child) {
      child = this.#family.labels(...values);
      node.set(values[last]!, child);
    }
    child.inc();
  }
}
