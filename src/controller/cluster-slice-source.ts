// The SliceSource over the reflectors' caches: which Gateways are waypoints, each one's slice,
// recomputed only when a change touches it. A Pod or EndpointSlice change (the high-volume kinds)
// marks only the Gateways that looked at that key or whose label it carries; a change to the
// low-volume kinds (routes, policies, classes, the mesh config) marks every waypoint.
import { isWaypointClass } from '../../config/compile/binding.ts';
import { ClusterIndex, SERVICE_NAME_LABEL } from './cluster-index.ts';
import type { ReflectorHandler } from './reflector.ts';
import { documentKey, type KubeDocument, type Slice, type SliceSource } from './slice-source.ts';
import { computeSlice, namedWaypoint, replicaKeysOf, type SliceOptions } from './slicer.ts';

const PRECISE_KINDS = new Set(['Pod', 'EndpointSlice', 'Service', 'ServiceEntry', 'Namespace']);
const SERVICE_ACCOUNT_ANNOTATION = 'gateway.istio.io/service-account';

interface GatewayState {
  slice: Slice | undefined;
  interest: Set<string>;
  stale: boolean;
  generation: number;
  readonly listeners: Set<() => void>;
}

export class ClusterSliceSource implements SliceSource {
  readonly index = new ClusterIndex();
  readonly #opts: SliceOptions;
  readonly #gateways = new Map<string, GatewayState>();
  /** interest key → Gateways (`ns/name`) that looked at it. */
  readonly #interested = new Map<string, Set<string>>();
  #pendingKinds: Set<string>;

  constructor(kinds: readonly string[], opts: SliceOptions) {
    this.#opts = opts;
    this.#pendingKinds = new Set(kinds);
  }

  get synced(): boolean {
    return this.#pendingKinds.size === 0;
  }

  /** The reflector handler for one kind. */
  handlerFor(kind: string): ReflectorHandler {
    return {
      upsert: (doc) => this.#changed(doc.kind, this.index.upsert(doc), doc),
      remove: (key) => {
        const old = this.index.remove(key);
        if (old) this.#changed(old.kind, old, undefined);
      },
      synced: () => {
        this.#pendingKinds.delete(kind);
        if (this.synced) this.#notifyAll();
      },
    };
  }

  /** Waypoint Gateways (`ns/name`): class istio-waypoint or one whose controller is Istio's mesh controller. */
  waypoints(): string[] {
    const out: string[] = [];
    for (const gw of this.index.ofKind('Gateway')) {
      const className = (gw.spec as { gatewayClassName?: string } | undefined)?.gatewayClassName;
      const cls = this.index.get(`gateway.networking.k8s.io/GatewayClass//${className}`);
      const controller = (cls?.spec as { controllerName?: string } | undefined)?.controllerName;
      if (isWaypointClass(className, controller)) out.push(`${gw.metadata.namespace}/${gw.metadata.name}`);
    }
    return out;
  }

  gatewaysFor(namespace: string, serviceAccount: string): readonly string[] {
    return this.waypoints().filter((ref) => {
      const [ns, name] = ref.split('/') as [string, string];
      if (ns !== namespace) return false;
      const gw = this.index.get(`gateway.networking.k8s.io/Gateway/${ns}/${name}`);
      const annotations = gw?.metadata.annotations as Record<string, string> | undefined;
      return (annotations?.[SERVICE_ACCOUNT_ANNOTATION] ?? name) === serviceAccount;
    });
  }

  slice(gateway: string): Slice | undefined {
    if (!this.synced) return undefined;
    const state = this.#state(gateway);
    if (state.stale || !state.slice) this.#recompute(gateway, state);
    return state.slice;
  }

  subscribe(gateway: string, listener: () => void): () => void {
    const state = this.#state(gateway);
    state.listeners.add(listener);
    return () => state.listeners.delete(listener);
  }

  #state(gateway: string): GatewayState {
    let state = this.#gateways.get(gateway);
    if (!state) {
      state = { slice: undefined, interest: new Set(), stale: true, generation: 0, listeners: new Set() };
      this.#gateways.set(gateway, state);
    }
    return state;
  }

  #recompute(gateway: string, state: GatewayState): void {
    const [namespace, name] = gateway.split('/') as [string, string];
    for (const key of state.interest) this.#interested.get(key)?.delete(gateway);
    const computed = computeSlice(this.index, { namespace, name }, this.#opts);
    for (const key of computed.documents.keys()) computed.interest.add(key);
    state.interest = computed.interest;
    for (const key of computed.interest) {
      let set = this.#interested.get(key);
      if (!set) {
        set = new Set();
        this.#interested.set(key, set);
      }
      set.add(gateway);
    }
    state.generation++;
    state.slice = { version: `${gateway}@${state.generation}`, documents: computed.documents };
    state.stale = false;
  }

  #changed(kind: string, old: KubeDocument | undefined, now: KubeDocument | undefined): void {
    const affected = PRECISE_KINDS.has(kind) ? this.#affected(old, now) : this.#gateways.keys();
    for (const gateway of [...affected]) this.#markStale(gateway);
  }

  #affected(old: KubeDocument | undefined, now: KubeDocument | undefined): Set<string> {
    const out = new Set<string>();
    const doc = (now ?? old) as KubeDocument;
    const ns = doc.metadata.namespace ?? '';
    const keys: string[] = [documentKey(doc)];
    if (doc.kind === 'Pod') keys.push(`pods:${ns}`, ...replicaKeysOf(doc));
    const service = (doc.metadata.labels as Record<string, string> | undefined)?.[SERVICE_NAME_LABEL];
    if (doc.kind === 'EndpointSlice' && service) keys.push(`slices:${ns}/${service}`);
    for (const key of keys) for (const g of this.#interested.get(key) ?? []) out.add(g);
    for (const d of [old, now]) {
      const named = namedWaypoint(d, this.index);
      if (!named || !this.#gateways.has(named)) continue;
      // A Pod binds only to a waypoint that takes workload traffic.
      if (doc.kind !== 'Pod' || this.#interested.get(`workloads:${named}`)?.has(named)) out.add(named);
    }
    return out;
  }

  #markStale(gateway: string): void {
    const state = this.#gateways.get(gateway);
    if (!state) return;
    state.stale = true;
    if (this.synced) for (const listener of state.listeners) listener();
  }

  #notifyAll(): void {
    for (const state of this.#gateways.values()) {
      state.stale = true;
      for (const listener of state.listeners) listener();
    }
  }
}
