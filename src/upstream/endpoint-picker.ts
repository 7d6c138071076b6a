// Endpoint selection: LEAST_REQUEST by power of two choices, Istio's default load balancer (Envoy
// picks two endpoints at random and takes the one with fewer active requests). Active counts live
// here across snapshots, keyed by ip:port, so a config change does not forget the load.
import type { Endpoint } from '../../config/model.ts';
import type { Binding } from '../pipeline/context.ts';

export class EndpointPicker {
  readonly #active = new Map<string, number>();

  /** Ready endpoints; when none is ready, those still serving while terminating (as kube-proxy falls back). */
  candidates(binding: Binding, port: number): readonly Endpoint[] {
    if (binding.kind === 'workload') {
      return binding.ready
        ? [
            {
              ip: binding.ip,
              port,
              identity: binding.identity,
              ready: true,
              serving: true,
              terminating: false,
              pod: binding.pod,
            },
          ]
        : [];
    }
    const ready = binding.endpoints.filter((e) => e.ready);
    return ready.length > 0 ? ready : binding.endpoints.filter((e) => e.serving && e.terminating);
  }

  pick(candidates: readonly Endpoint[]): Endpoint | undefined {
    const n = candidates.length;
    if (n <= 1) return candidates[0];
    const a = candidates[Math.floor(Math.random() * n)]!;
    let b = candidates[Math.floor(Math.random() * (n - 1))]!;
    if (b === a) b = candidates[n - 1]!;
    const la = this.load(a);
    const lb = this.load(b);
    if (la !== lb) return la < lb ? a : b;
    return Math.random() < 0.5 ? a : b;
  }

  load(e: Endpoint): number {
    return this.#active.get(`${e.ip}:${e.port}`) ?? 0;
  }

  /** Counts a request as active on e until the returned function is called. */
  begin(e: Endpoint): () => void {
    const key = `${e.ip}:${e.port}`;
    this.#active.set(key, (this.#active.get(key) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = (this.#active.get(key) ?? 1) - 1;
      if (left <= 0) this.#active.delete(key);
      else this.#active.set(key, left);
    };
  }
}
