// Who a request comes from and goes to, for the source_* and destination_* labels. Each workload's
// labels are resolved once and shared (by pod, by endpoint, by baggage string), so the per-request
// cost is a map lookup and the metrics' child cache can key on object identity.
import type { Endpoint, PodInfo } from '../../config/model.ts';
import type { SpiffeId } from '../identity/spiffe.ts';
import type { Binding } from '../pipeline/context.ts';
import {
  baggageWorkload,
  podWorkload,
  UNKNOWN,
  unknownWorkload,
  type WorkloadLabels,
} from './workload-labels.ts';

/** Caches keyed by strings a peer sends are cleared past this many entries (memory stays bounded). */
const MAX_ENTRIES = 4096;
const MAX_BAGGAGE = 1024;

export interface SourceFacts {
  readonly baggage: string | undefined;
  readonly peer: SpiffeId;
  readonly ip: string;
  readonly pods: ReadonlyMap<string, PodInfo> | undefined;
}

export class PeerResolver {
  readonly cluster: string;
  readonly #byPod = new WeakMap<PodInfo, WorkloadLabels>();
  readonly #byEndpoint = new WeakMap<Endpoint, WorkloadLabels>();
  readonly #byBaggage = new Map<string, WorkloadLabels | undefined>();
  readonly #unknown = new Map<string, WorkloadLabels>();
  /** One object per distinct set of values, across snapshots: metrics key their children on it. */
  readonly #interned = new Map<string, WorkloadLabels>();

  constructor(cluster: string) {
    this.cluster = cluster;
  }

  /**
   * The CONNECT's `baggage` when it names a workload in the peer's own namespace (ztunnel describes
   * the workload whose identity it presents), else the pod at the tunnel's source IP, else unknown
   * but for the principal and the namespace the certificate proves.
   */
  source(f: SourceFacts): WorkloadLabels {
    if (f.baggage && f.baggage.length <= MAX_BAGGAGE) {
      const fromBaggage = this.#fromBaggage(f.baggage, f.peer);
      if (fromBaggage) return fromBaggage;
    }
    const pod = f.pods?.get(f.ip);
    if (pod && pod.namespace === f.peer.namespace) return this.#fromPod(pod, f.peer.uri);
    return this.#unknownFor(f.peer);
  }

  /** A tunnel's source when it was not resolved at accept time (no baggage is known then). */
  sourceOf(t: {
    peer: SpiffeId;
    source: { ip: string };
    snapshot: { pods?: ReadonlyMap<string, PodInfo> };
  }): WorkloadLabels {
    return this.source({ baggage: undefined, peer: t.peer, ip: t.source.ip, pods: t.snapshot.pods });
  }

  /** The endpoint that answered (its pod), else the pod a workload tunnel addresses, else unknown. */
  destination(endpoint: Endpoint | undefined, binding: Binding): WorkloadLabels {
    if (endpoint) {
      let w = this.#byEndpoint.get(endpoint);
      if (!w) {
        const principal = endpoint.transport === 'plain' ? UNKNOWN : endpoint.identity;
        w = this.#intern(
          endpoint.pod
            ? podWorkload(endpoint.pod, principal, this.cluster)
            : unknownWorkload(principal, this.cluster),
        );
        this.#byEndpoint.set(endpoint, w);
      }
      return w;
    }
    if (binding.kind === 'workload') return this.#fromPod(binding.pod, binding.identity);
    return this.#unknownFor(undefined);
  }

  #intern(w: WorkloadLabels): WorkloadLabels {
    const key = Object.values(w).join('\u0000');
    const known = this.#interned.get(key);
    if (known) return known;
    if (this.#interned.size >= MAX_ENTRIES * 4) this.#interned.clear();
    this.#interned.set(key, w);
    return w;
  }

  #fromPod(pod: PodInfo, principal: string): WorkloadLabels {
    let w = this.#byPod.get(pod);
    if (!w || w.principal !== principal) {
      w = this.#intern(podWorkload(pod, principal, this.cluster));
      this.#byPod.set(pod, w);
    }
    return w;
  }

  #fromBaggage(baggage: string, peer: SpiffeId): WorkloadLabels | undefined {
    const key = `${peer.uri}\n${baggage}`;
    if (this.#byBaggage.has(key)) return this.#byBaggage.get(key);
    const parsed = baggageWorkload(baggage, peer.uri, this.cluster);
    const w = parsed && parsed.namespace === peer.namespace ? this.#intern(parsed) : undefined;
    if (this.#byBaggage.size >= MAX_ENTRIES) this.#byBaggage.clear();
    this.#byBaggage.set(key, w);
    return w;
  }

  #unknownFor(peer: SpiffeId | undefined): WorkloadLabels {
    const key = peer?.uri ?? '';
    let w = this.#unknown.get(key);
    if (!w) {
      w = this.#intern(
        peer
          ? Object.freeze({ ...unknownWorkload(peer.uri, this.cluster), namespace: peer.namespace })
          : unknownWorkload(UNKNOWN, UNKNOWN),
      );
      if (this.#unknown.size >= MAX_ENTRIES) this.#unknown.clear();
      this.#unknown.set(key, w);
    }
    return w;
  }
}
