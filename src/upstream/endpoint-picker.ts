// Endpoint selection, the parts together: candidate filtering (ready, else serving-terminating),
// outlier ejection, circuit breaking and the cluster's load balancer. One instance per waypoint:
// its state (active counts, cursors, ejections, breaker counters) is keyed by `ip:port` and
// cluster name, so a config change does not forget it.
import type { Endpoint } from '../../config/model.ts';
import type { Binding } from '../pipeline/context.ts';
import { CircuitBreakers } from './circuit-breaker.ts';
import type { Cluster, LoadBalancerPolicy } from './cluster.ts';
import { type EndpointChoice, type HashInput, LoadBalancer } from './load-balancer.ts';
import { OutlierDetector } from './outlier-detection.ts';

const LEAST_REQUEST: LoadBalancerPolicy = Object.freeze({ kind: 'LEAST_REQUEST' as const });

export interface EndpointPickerParts {
  readonly balancer?: LoadBalancer;
  readonly outlier?: OutlierDetector;
  readonly breakers?: CircuitBreakers;
}

export type ClusterChoice =
  | ({ readonly kind: 'endpoint' } & EndpointChoice)
  /** Every candidate ejected and no panic, or no candidate at all. */
  | { readonly kind: 'none'; readonly ejected: boolean };

export class EndpointPicker {
  readonly balancer: LoadBalancer;
  readonly outlier: OutlierDetector;
  readonly breakers: CircuitBreakers;
  readonly #ready = new WeakMap<readonly Endpoint[], readonly Endpoint[]>();

  constructor(parts: EndpointPickerParts = {}) {
    this.balancer = parts.balancer ?? new LoadBalancer();
    this.outlier = parts.outlier ?? new OutlierDetector();
    this.breakers = parts.breakers ?? new CircuitBreakers();
  }

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
    return this.#usable(binding.endpoints);
  }

  /** The same filter over a cluster's endpoints; the result is cached per (immutable) list. */
  clusterCandidates(cluster: Cluster): readonly Endpoint[] {
    return this.#usable(cluster.endpoints);
  }

  #usable(endpoints: readonly Endpoint[]): readonly Endpoint[] {
    let out = this.#ready.get(endpoints);
    if (!out) {
      const ready = endpoints.filter((e) => e.ready);
      out = ready.length > 0 ? ready : endpoints.filter((e) => e.serving && e.terminating);
      this.#ready.set(endpoints, out);
    }
    return out;
  }

  /** LEAST_REQUEST over candidates (pod-addressed traffic and TCP, which have no cluster policy). */
  pick(candidates: readonly Endpoint[], exclude?: ReadonlySet<string>): Endpoint | undefined {
    if (!exclude || exclude.size === 0) return this.balancer.leastRequest(candidates);
    return this.balancer.pick({
      cluster: '',
      policy: LEAST_REQUEST,
      candidates,
      exclude,
      request: { headers: {}, path: '', sourceIp: '' },
    })?.endpoint;
  }

  /** An endpoint of the cluster: not ejected (unless panicking), chosen by its load balancer. */
  choose(cluster: Cluster, request: HashInput, exclude?: ReadonlySet<string>): ClusterChoice {
    const candidates = this.clusterCandidates(cluster);
    if (candidates.length === 0) return { kind: 'none', ejected: false };
    const healthy = this.outlier.healthy(cluster, candidates);
    const chosen = this.balancer.pick({
      cluster: cluster.name,
      policy: cluster.policy.loadBalancer,
      candidates: healthy,
      exclude,
      request,
    });
    return chosen ? { kind: 'endpoint', ...chosen } : { kind: 'none', ejected: true };
  }

  /** Counts a request as active on e until the returned function is called. */
  begin(e: Endpoint): () => void {
    return this.balancer.begin(e);
  }

  /** Stops the outlier detector's sweep timers. */
  close(): void {
    this.outlier.close();
  }
}
