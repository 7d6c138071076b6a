// An in-memory SliceSource for config stream tests: documents per Gateway, ServiceAccounts per
// Gateway (istiod's naming: the Gateway's name), and a version that moves on every change.
import {
  documentKey,
  type KubeDocument,
  type Slice,
  type SliceSource,
} from '../../src/controller/slice-source.ts';

export class MemorySliceSource implements SliceSource {
  synced = true;
  readonly #docs = new Map<string, Map<string, KubeDocument>>();
  readonly #versions = new Map<string, number>();
  readonly #listeners = new Map<string, Set<() => void>>();
  /** gateway → the ServiceAccount (namespace/sa) allowed to read it. */
  readonly #accounts = new Map<string, string>();
  #rv = 0;

  /** Declares a Gateway (`ns/name`) readable by ServiceAccount `sa` of its namespace (default: its name). */
  addGateway(gateway: string, sa = gateway.split('/')[1]!): void {
    this.#accounts.set(gateway, `${gateway.split('/')[0]}/${sa}`);
    this.#docs.set(gateway, this.#docs.get(gateway) ?? new Map());
    this.#bump(gateway);
  }

  /** Adds or replaces documents in a Gateway's slice; each gets a new resourceVersion. */
  put(gateway: string, ...docs: KubeDocument[]): void {
    const slice = this.#docs.get(gateway);
    if (!slice) throw new Error(`no Gateway ${gateway}`);
    for (const doc of docs) {
      const rv = String(++this.#rv);
      slice.set(documentKey(doc), { ...doc, metadata: { ...doc.metadata, resourceVersion: rv } });
    }
    this.#bump(gateway);
  }

  remove(gateway: string, ...keys: string[]): void {
    for (const key of keys) this.#docs.get(gateway)?.delete(key);
    this.#bump(gateway);
  }

  /** How many listeners a Gateway has (streams subscribed). */
  listeners(gateway: string): number {
    return this.#listeners.get(gateway)?.size ?? 0;
  }

  gatewaysFor(namespace: string, serviceAccount: string): readonly string[] {
    return [...this.#accounts].filter(([, sa]) => sa === `${namespace}/${serviceAccount}`).map(([gw]) => gw);
  }

  slice(gateway: string): Slice | undefined {
    const docs = this.#docs.get(gateway);
    if (!docs) return undefined;
    return { version: `v${this.#versions.get(gateway) ?? 0}`, documents: new Map(docs) };
  }

  subscribe(gateway: string, listener: () => void): () => void {
    const set = this.#listeners.get(gateway) ?? new Set();
    this.#listeners.set(gateway, set);
    set.add(listener);
    return () => set.delete(listener);
  }

  #bump(gateway: string): void {
    this.#versions.set(gateway, (this.#versions.get(gateway) ?? 0) + 1);
    for (const l of this.#listeners.get(gateway) ?? []) l();
  }
}
