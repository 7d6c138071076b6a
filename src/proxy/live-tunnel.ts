// The TunnelInfo of an accepted CONNECT. A tunnel can live for hours (keep-alive, HTTP/2, gRPC):
// each request on it must see the configuration in force when it starts, not the one the CONNECT
// arrived under, so binding and snapshot are looked up again on every read; if the binding is gone
// from the new snapshot, the tunnel keeps the version it was accepted with until it closes.
// A class rather than an object literal with getters: an idle tunnel then holds one small object,
// not three closures and a context that keeps the whole CONNECT request (headers included) alive.
import type { Snapshot } from '../../config/model.ts';
import type { HostPort } from '../hbone/authority.ts';
import type { SpiffeId } from '../identity/spiffe.ts';
import type { WorkloadLabels } from '../observe/workload-labels.ts';
import type { Binding, TunnelInfo } from '../pipeline/context.ts';

export class LiveTunnel implements TunnelInfo {
  readonly peer: SpiffeId;
  readonly source: HostPort;
  readonly destination: HostPort;
  readonly sourceWorkload: WorkloadLabels | undefined;
  readonly #accepted: Snapshot;
  readonly #binding: Binding;
  /** The Service VIP:port key, or undefined for a pod address. */
  readonly #serviceKey: string | undefined;
  readonly #now: () => Snapshot | undefined;

  constructor(
    accepted: { snapshot: Snapshot; binding: Binding; serviceKey: string | undefined },
    who: {
      peer: SpiffeId;
      source: HostPort;
      destination: HostPort;
      sourceWorkload?: WorkloadLabels | undefined;
    },
    now: () => Snapshot | undefined,
  ) {
    this.#accepted = accepted.snapshot;
    this.#binding = accepted.binding;
    this.#serviceKey = accepted.serviceKey;
    this.peer = who.peer;
    this.source = who.source;
    this.destination = who.destination;
    this.sourceWorkload = who.sourceWorkload;
    this.#now = now;
  }

  get binding(): Binding {
    return this.#bindingIn(this.#now()) ?? this.#binding;
  }

  get snapshot(): Snapshot {
    const now = this.#now();
    return this.#bindingIn(now) ? now! : this.#accepted;
  }

  /** Binding and snapshot read together, with one lookup (pinTunnel). */
  pin(): TunnelInfo {
    const now = this.#now();
    const current = this.#bindingIn(now);
    return {
      binding: current ?? this.#binding,
      snapshot: current ? now! : this.#accepted,
      peer: this.peer,
      source: this.source,
      destination: this.destination,
      sourceWorkload: this.sourceWorkload,
    };
  }

  /** The binding in `now`, when that snapshot is not the accepted one and still binds. */
  #bindingIn(now: Snapshot | undefined): Binding | undefined {
    if (now === this.#accepted || !now) return undefined;
    return this.#serviceKey ? now.services.get(this.#serviceKey) : now.workloads.get(this.destination.ip);
  }
}

/** A request's own copy of its tunnel: binding and snapshot read once, together. */
export function pinTunnel(t: TunnelInfo): TunnelInfo {
  if (t instanceof LiveTunnel) return t.pin();
  return {
    binding: t.binding,
    snapshot: t.snapshot,
    peer: t.peer,
    source: t.source,
    destination: t.destination,
    sourceWorkload: t.sourceWorkload,
  };
}
