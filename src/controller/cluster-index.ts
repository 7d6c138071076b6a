// Every cached object of every watched kind, indexed the ways the slicer looks them up, so that one
// waypoint's slice is computed from what concerns it rather than by scanning the cluster.
import type { Labels } from '../../config/compile/labels.ts';
import { USE_WAYPOINT_LABEL, USE_WAYPOINT_NAMESPACE_LABEL } from '../../config/compile/use-waypoint.ts';
import { type DocumentKey, documentKey, type KubeDocument } from './slice-source.ts';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
const NO_LABELS: Labels = {};

/** Kinds whose objects are looked up per namespace. */
const PER_NAMESPACE = new Set(['Service', 'ServiceEntry', 'Pod', 'ReferenceGrant']);

export class ClusterIndex {
  readonly #byKind = new Map<string, Map<DocumentKey, KubeDocument>>();
  readonly #byNamespace = new Map<string, Map<string, Set<DocumentKey>>>();
  /** `waypointNs/waypointName` → keys of objects whose own use-waypoint label names it. */
  readonly #ownLabel = new Map<string, Set<DocumentKey>>();
  /** `ns/service` → EndpointSlice keys. */
  readonly #slices = new Map<string, Set<DocumentKey>>();
  readonly #all = new Map<DocumentKey, KubeDocument>();

  get(key: DocumentKey): KubeDocument | undefined {
    return this.#all.get(key);
  }

  /** Every object of a kind (for the low-volume kinds: routes, policies, Gateways). */
  ofKind(kind: string): Iterable<KubeDocument> {
    return this.#byKind.get(kind)?.values() ?? [];
  }

  count(kind: string): number {
    return this.#byKind.get(kind)?.size ?? 0;
  }

  inNamespace(kind: string, namespace: string): KubeDocument[] {
    const keys = this.#byNamespace.get(kind)?.get(namespace) ?? [];
    return [...keys].map((k) => this.#all.get(k) as KubeDocument);
  }

  namedByOwnLabel(waypoint: string): KubeDocument[] {
    return [...(this.#ownLabel.get(waypoint) ?? [])].map((k) => this.#all.get(k) as KubeDocument);
  }

  slicesOf(namespace: string, service: string): KubeDocument[] {
    return [...(this.#slices.get(`${namespace}/${service}`) ?? [])].map(
      (k) => this.#all.get(k) as KubeDocument,
    );
  }

  namespaceLabels(namespace: string): Labels {
    return labelsOf(this.#all.get(`/Namespace//${namespace}`)) ?? NO_LABELS;
  }

  /** Stores doc and returns the version it replaced. */
  upsert(doc: KubeDocument): KubeDocument | undefined {
    const key = documentKey(doc);
    const old = this.#all.get(key);
    if (old) this.#unindex(key, old);
    this.#all.set(key, doc);
    this.#index(key, doc);
    return old;
  }

  remove(key: DocumentKey): KubeDocument | undefined {
    const old = this.#all.get(key);
    if (!old) return undefined;
    this.#unindex(key, old);
    this.#all.delete(key);
    return old;
  }

  #index(key: DocumentKey, doc: KubeDocument): void {
    for (const [map, k] of this.#placesOf(doc)) setIn(map, k).add(key);
    mapIn(this.#byKind, doc.kind).set(key, doc);
  }

  #unindex(key: DocumentKey, doc: KubeDocument): void {
    for (const [map, k] of this.#placesOf(doc)) {
      const set = map.get(k);
      set?.delete(key);
      if (set?.size === 0) map.delete(k);
    }
    this.#byKind.get(doc.kind)?.delete(key);
  }

  #placesOf(doc: KubeDocument): [Map<string, Set<DocumentKey>>, string][] {
    const out: [Map<string, Set<DocumentKey>>, string][] = [];
    const ns = doc.metadata.namespace ?? '';
    if (PER_NAMESPACE.has(doc.kind)) out.push([mapIn(this.#byNamespace, doc.kind), ns]);
    const labels = labelsOf(doc);
    const own = labels?.[USE_WAYPOINT_LABEL];
    if (own && doc.kind !== 'Namespace') {
      out.push([this.#ownLabel, `${labels?.[USE_WAYPOINT_NAMESPACE_LABEL] ?? ns}/${own}`]);
    }
    const service = labels?.[SERVICE_NAME_LABEL];
    if (doc.kind === 'EndpointSlice' && service) out.push([this.#slices, `${ns}/${service}`]);
    return out;
  }
}

export function labelsOf(doc: KubeDocument | undefined): Labels | undefined {
  return doc?.metadata.labels as Labels | undefined;
}

function mapIn<V>(outer: Map<string, Map<string, V>>, key: string): Map<string, V> {
  let inner = outer.get(key);
  if (!inner) {
    inner = new Map();
    outer.set(key, inner);
  }
  return inner;
}

function setIn(outer: Map<string, Set<DocumentKey>>, key: string): Set<DocumentKey> {
  let inner = outer.get(key);
  if (!inner) {
    inner = new Set();
    outer.set(key, inner);
  }
  return inner;
}
