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
    return this.#current()?.binding ?? this.#binding;
  }

  get snapshot(): Snapshot {
    return this.#current() ? this.#now()! : this.#accepted;
  }

  /** The binding in the snapshot now in force, when that differs from the accepted one and still binds. */
  #current(): { binding: Binding } | undefined {
    const now = this.#now();
    if (now === this.#accepted || !now) return undefined;
    const b = this.#serviceKey ? now.services.get(this.#serviceKey) : now.workloads.get(this.destination.ip);
    return b ? { binding: b } : undefined;
  }
}
