// Every Service port a route may send to, as a cluster with its DestinationRule applied
// (l7-semantics.md §4.10). Backends need not be bound to this waypoint: a route on a bound Service
// may split to any Service. ServiceEntries are services too, found by namespace/name and by each of
// their hosts. Clusters are built on first reference and shared within a snapshot.
import { isIP } from 'node:net';
import { newEndpointNotes, serviceEndpoints } from '../../config/compile/endpoints.ts';
import type { Inventory } from '../../config/compile/inventory.ts';
import { NO_LABELS } from '../../config/compile/labels.ts';
import { portProtocol } from '../../config/compile/protocol.ts';
import {
  newServiceEntryNotes,
  serviceEntryEndpoints,
  serviceEntryInfo,
  serviceEntryPortProtocol,
} from '../../config/compile/service-entry.ts';
import type { DestinationRule, SubsetSpec } from '../../config/kinds/destination-rule.ts';
import type { Service } from '../../config/kinds/service.ts';
import type { ServiceEntry } from '../../config/kinds/service-entry.ts';
import type { AppProtocol, ConfigMessage, Endpoint, ServiceInfo } from '../../config/model.ts';
import { type Resource, resourcesOf } from '../../config/resource.ts';
import { type Cluster, clusterName } from '../../src/upstream/cluster.ts';
import { trafficPolicy } from './traffic-policy.ts';

export interface ServicePortRecord {
  readonly port: number;
  /** undefined: a port the waypoint does not carry (UDP, SCTP). */
  readonly protocol: AppProtocol | undefined;
}

/** A Service or a ServiceEntry, as routes see it. */
export interface ServiceRecord {
  readonly kind: 'Service' | 'ServiceEntry';
  readonly info: ServiceInfo;
  /** Every host it answers to: the Service FQDN, or a ServiceEntry's spec.hosts. */
  readonly hosts: readonly string[];
  readonly ports: readonly ServicePortRecord[];
  /** The endpoints behind one of `ports`. */
  endpoints(port: number): Endpoint[];
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
      const rec = this.#serviceRecord(svc, info);
      this.#services.set(`${svc.namespace}/${svc.name}`, rec);
      this.#byHost.set(info.hostname, rec);
    }
    for (const se of inv.serviceEntries) {
      const key = `${se.namespace}/${se.name}`;
      // Services and ServiceEntries share one name space in routes; a Service of the same name wins.
      if (this.#services.has(key)) {
        this.#warn(se, `a Service ${key} exists too; routes to ${key} go to the Service`, 'metadata.name');
        continue;
      }
      const rec = this.#serviceEntryRecord(se);
      this.#services.set(key, rec);
      for (const h of rec.hosts) if (!this.#byHost.has(h)) this.#byHost.set(h, rec);
    }
    this.#rules = resourcesOf<DestinationRule>(resources, 'networking.istio.io', 'DestinationRule');
  }

  service(namespace: string, name: string): ServiceRecord | undefined {
    return this.#services.get(`${namespace}/${name}`);
  }

  /**
   * An Istio host (`echo`, `echo.ns`, `echo.ns.svc`, FQDN) as written in namespace `from`; a
   * ServiceEntry host as written in its spec.hosts.
   */
  serviceByHost(host: string, from: string): ServiceRecord | undefined {
    return this.#byHost.get(host) ?? this.#byHost.get(this.fqdn(host, from));
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
        why: `${rec.kind} ${namespace}/${name} has no port ${port}`,
        reason: 'BackendNotFound',
      };
    }
    const dr = this.destinationRule(rec.info, rec.hosts);
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
    let endpoints = rec.endpoints(port);
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
    const protocol = sp.protocol ?? 'tcp';
    return {
      ok: true,
      cluster: {
        name: clusterName(port, subsetName, rec.info.hostname, protocol),
        service: rec.info,
        port,
        protocol,
        subset: subsetName,
        endpoints,
        policy,
      },
    };
  }

  #serviceRecord(svc: Resource<Service>, info: ServiceInfo): ServiceRecord {
    const ports = svc.spec.spec?.ports ?? [];
    const vips = svc.spec.spec?.clusterIPs ?? (svc.spec.spec?.clusterIP ? [svc.spec.spec.clusterIP] : []);
    const families = new Set(vips.filter((ip) => isIP(ip) !== 0).map((ip) => isIP(ip)));
    if (families.size === 0) families.add(4);
    return {
      kind: 'Service',
      info,
      hosts: [info.hostname],
      ports: ports.map((p) => ({
        port: p.port,
        protocol: portProtocol(p.port, p.name, p.protocol, p.appProtocol),
      })),
      endpoints: (port) => {
        const sp = ports.find((p) => p.port === port);
        return sp
          ? serviceEndpoints(svc, sp, families, this.#inv, this.#trustDomain, newEndpointNotes())
          : [];
      },
    };
  }

  #serviceEntryRecord(se: Resource<ServiceEntry>): ServiceRecord {
    const ports = se.spec.spec.ports ?? [];
    return {
      kind: 'ServiceEntry',
      info: serviceEntryInfo(se),
      hosts: se.spec.spec.hosts,
      ports: ports.map((p) => ({ port: p.number, protocol: serviceEntryPortProtocol(p) })),
      endpoints: (port) => {
        const sp = ports.find((p) => p.number === port);
        return sp ? serviceEntryEndpoints(se, sp, this.#inv, this.#trustDomain, newServiceEntryNotes()) : [];
      },
    };
  }

  /**
   * The DestinationRule for a Service: an exact host beats a wildcard; then one in the Service's
   * own namespace; then the oldest (store order is by namespace/name, which stands in for age).
   */
  destinationRule(
    svc: ServiceInfo,
    hosts: readonly string[] = [svc.hostname],
  ): Resource<DestinationRule> | undefined {
    let best: { r: Resource<DestinationRule>; score: number } | undefined;
    for (const r of this.#rules) {
      const written = r.spec.spec.host;
      const host = this.fqdn(written, r.namespace);
      let score: number;
      // A ServiceEntry host is matched as written (it need not look like a cluster name).
      if (hosts.includes(host) || hosts.includes(written)) score = 4;
      else if (host.startsWith('*') && hosts.some((h) => h.endsWith(host.slice(1)))) score = 2;
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
