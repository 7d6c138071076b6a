// Deep freezing for snapshots: the data path shares one snapshot across every request, so nothing in
// it may change after it is built. Maps get a read-only subclass because Object.freeze leaves
// Map.set working.

/** A Map whose set/delete/clear throw once built. */
export class FrozenMap<K, V> extends Map<K, V> {
  #sealed = false;

  constructor(entries: Iterable<readonly [K, V]>) {
    super();
    for (const [k, v] of entries) super.set(k, v);
    this.#sealed = true;
  }

  override set(key: K, value: V): this {
    if (this.#sealed) throw new TypeError('snapshot maps are read-only');
    return super.set(key, value);
  }

  override delete(_key: K): boolean {
    throw new TypeError('snapshot maps are read-only');
  }

  override clear(): void {
    throw new TypeError('snapshot maps are read-only');
  }
}

/** Freezes value and everything reachable from it (including map keys and values); returns it. */
export function deepFreeze<T>(value: T): T {
  const seen = new Set<unknown>();
  const visit = (v: unknown): void => {
    if (v === null || typeof v !== 'object' || seen.has(v)) return;
    seen.add(v);
    if (v instanceof Map) {
      for (const [k, val] of v) {
        visit(k);
        visit(val);
      }
    }
    for (const key of Reflect.ownKeys(v)) visit((v as Record<PropertyKey, unknown>)[key]);
    Object.freeze(v);
  };
  visit(value);
  return value;
}
