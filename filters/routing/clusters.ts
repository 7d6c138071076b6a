// Every Service port a route may send to, as a cluster with its DestinationRule applied
// (l7-semantics.md §4.10). Backends need not be bound to this waypoint: a route on a bound Service
// may split to any Service. Clusters are built on first reference and shared within a snapshot.
import { isIP } from 'node:net';
import { newEndpointNotes, serviceEndpoints } from '../../config/compile/endpoints.ts';
import type { Inventory } from '../../config/compile/inventory.ts';
import { NO_LABELS } from '../../config/compile/labels.ts';
import { portProtocol } from '../../config/compile/protocol.ts';
import type { DestinationRule, SubsetSpec } from '../../config/kinds/destination-rule.ts';
import type { Service, ServicePort } from '../../config/kinds/service.ts';
import type { ConfigMessage, Endpoint, ServiceInfo } from '../../config/model.ts';
import { type Resource, resourcesOf } from '../../config/resource.ts';
import { type Cluster, clusterName } from '../../src/upstream/cluster.ts';
import { trafficPolicy } from './traffic-policy.ts';

export interface ServiceRecord {
  readonly resource: Resource<Service>;
  readonly info: ServiceInfo;
  readonly ports: readonly ServicePort[];
}

export type ClusterLookup =
  | { readonly ok: true; readonly cluster: Cluster }
  | { readonly ok: false; readonly why: string; readonly reason: 'BackendNotFound' | 'UnsupportedValue' };

export class ClusterCatalog {
  readonly #inv: Inventory;
  readonly #trustDomain: string;
  readonly #clusterDomain: string;
  readonly #services = new Map<string, ServiceRecord>();
  readonly #byHost = new Map<string, ServiceRecord>();
  readonly #rules: readonly Resource<DestinationRule>[];
  readonly #clusters = new Map<string, ClusterLookup>();
  readonly #messages: ConfigMessage[];
  readonly #replicas: number;

  constructor(
    inv: Inventory,
    resources: readonly Resource[],
    opts: { trustDomain: string; clusterDomain: string; replicas?: number },
    messages: ConfigMessage[],
  ) {
    this.#inv = inv;
    // Live waypoint replicas, for DestinationRules whose pool limits are per waypoint.
    this.#replicas = opts.replicas ?? 1;
    this.#trustDomain = opts.trustDomain;
    this.#clusterDomain = opts.clusterDomain;
    this.#messages = messages;
    for (const svc of inv.services) {
      const info: ServiceInfo = {
        namespace: svc.namespace,
        name: svc.name,
        hostname: `${svc.name}.${svc.namespace}.svc.${opts.clusterDomain}`,
        labels: svc.spec.metadata.labels ?? NO_LABELS,
      };
      const rec = { resource: svc, info, ports: svc.spec.spec?.ports ?? [] };
      this.#services.set(`${svc.namespace}/${svc.name}`, rec);
      this.#byHost.set(info.hostname, rec);
    }
    this.#rules = resourcesOf<DestinationRule>(resources, 'networking.istio.io', 'DestinationRule');
  }

  service(namespace: string, name: string): ServiceRecord | undefined {
    return this.#services.get(`${namespace}/${name}`);
  }

  /** An Istio host (`echo`, `echo.ns`, `echo.ns.svc`, FQDN) as written in namespace `from`. */
  serviceByHost(host: string, from: string): ServiceRecord | undefined {
    return this.#byHost.get(this.fqdn(host, from));
  }

  fqdn(host: string, from: string): string {
    const parts = host.split('.');
    if (parts.length === 1) return `${host}.${from}.svc.${this.#clusterDomain}`;
    if (parts.length === 2) return `${host}.svc.${this.#clusterDomain}`;
    if (parts.length === 3 && parts[2] === 'svc') return `${host}.${this.#clusterDomain}`;
    return host;
  }

  /** The cluster of Service `ns/name` port `port` (subset optional), DestinationRule applied. */
  cluster(namespace: string, name: string, port: number, subset?: string): ClusterLookup {
    const key = `${namespace}/${name}:${port}|${subset ?? ''}`;
    let found = this.#clusters.get(key);
    if (!found) {
      found = this.#build(namespace, name, port, subset);
      this.#clusters.set(key, found);
    }
    return found;
  }

  #build(namespace: string, name: string, port: number, subsetName: string | undefined): ClusterLookup {
    const rec = this.service(namespace, name);
    if (!rec) return { ok: false, why: `Service ${namespace}/${name} not found`, reason: 'BackendNotFound' };
    const sp = rec.ports.find((p) => p.port === port);
    if (!sp) {
      return {
        ok: false,
        why: `Service ${namespace}/${name} has no port ${port}`,
        reason: 'BackendNotFound',
      };
    }
    const dr = this.destinationRule(rec.info);
    let subset: SubsetSpec | undefined;
    if (subsetName !== undefined) {
      subset = dr?.spec.spec.subsets?.find((s) => s.name === subsetName);
      if (!subset) {
        return {
          ok: false,
          why: `no DestinationRule defines subset ${subsetName} of ${rec.info.hostname}`,
          reason: 'BackendNotFound',
        };
      }
    }
    let endpoints = this.#endpoints(rec, sp);
    if (subset?.labels) {
      const want = Object.entries(subset.labels);
      endpoints = endpoints.filter((e) => want.every(([k, v]) => e.pod?.labels[k] === v));
    }
    const policy = trafficPolicy(
      dr,
      port,
      subset,
      (text, field) => this.#warn(dr as Resource<DestinationRule>, text, field),
      this.#replicas,
    );
    return {
      ok: true,
      cluster: {
        name: clusterName(port, subsetName, rec.info.hostname),
        service: rec.info,
        port,
        protocol: portProtocol(sp.port, sp.name, sp.protocol, sp.appProtocol) ?? 'tcp',
        subset: subsetName,
        endpoints,
        policy,
      },
    };
  }

  #endpoints(rec: ServiceRecord, sp: ServicePort): Endpoint[] {
    const vips =
      rec.resource.spec.spec?.clusterIPs ??
      (rec.resource.spec.spec?.clusterIP ? [rec.resource.spec.spec.clusterIP] : []);
    const families = new Set(vips.filter((ip) => isIP(ip) !== 0).map((ip) => isIP(ip)));
    if (families.size === 0) families.add(4);
    return serviceEndpoints(rec.resource, sp, families, this.#inv, this.#trustDomain, newEndpointNotes());
  }

  /**
   * The DestinationRule for a Service: an exact host beats a wildcard; then one in the Service's
   * own namespace; then the oldest (store order is by namespace/name, which stands in for age).
   */
  destinationRule(svc: ServiceInfo): Resource<DestinationRule> | undefined {
    let best: { r: Resource<DestinationRule>; score: number } | undefined;
    for (const r of this.#rules) {
      const host = this.fqdn(r.spec.spec.host, r.namespace);
      let score: number;
      if (host === svc.hostname) score = 4;
      else if (host.startsWith('*') && svc.hostname.endsWith(host.slice(1))) score = 2;
      else continue;
      if (r.namespace === svc.namespace) score += 1;
      if (!best || score > best.score) best = { r, score };
    }
    return best?.r;
  }

  #warn(r: Resource, text: string, field: string): void {
    this.#messages.push({
      severity: 'warning',
      message: `${r.origin}: ${r.kind} ${r.namespace}/${r.name}: ${field}: ${text}`,
      origin: r.origin,
      kind: r.kind,
      namespace: r.namespace,
      name: r.name,
      field,
    });
  }
}
