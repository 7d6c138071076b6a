// What a ServiceEntry contributes, the way istiod reads it for ambient: its VIPs (spec.addresses),
// its ports, and its endpoints: spec.endpoints with IP addresses, or the Pods its workloadSelector
// picks. MESH_INTERNAL endpoints are mesh workloads reached over HBONE; MESH_EXTERNAL ones are
// outside the mesh and reached over plain TCP with no identity to check (egress).
import { isIP } from 'node:net';
import type { ServiceEntry, ServiceEntryPort } from '../kinds/service-entry.ts';
import type { AppProtocol, Endpoint, ServiceInfo } from '../model.ts';
import type { Resource } from '../resource.ts';
import { canonicalIP } from './addresses.ts';
import type { Inventory } from './inventory.ts';
import { labelsMatch, NO_LABELS } from './labels.ts';
import { isTerminal, podConditions, podInfo, podIPs, serviceAccountOf, spiffeIdentity } from './pods.ts';
import { portProtocol } from './protocol.ts';

/** Problems found while collecting a ServiceEntry's endpoints, gathered so warnings stay few. */
export interface ServiceEntryNotes {
  /** Endpoint addresses that are hostnames (DNS resolution) or sockets: skipped. */
  readonly unresolved: Set<string>;
}

export function newServiceEntryNotes(): ServiceEntryNotes {
  return { unresolved: new Set() };
}

export function serviceEntryInfo(se: Resource<ServiceEntry>): ServiceInfo {
  return {
    namespace: se.namespace,
    name: se.name,
    hostname: se.spec.spec.hosts[0] ?? se.name,
    labels: se.spec.metadata.labels ?? NO_LABELS,
  };
}

/**
 * The single addresses of spec.addresses (a /32 or /128 counts as one); CIDR ranges cannot be
 * dialled as one VIP and are returned in `ranges`.
 */
export function serviceEntryVips(se: Resource<ServiceEntry>): { vips: string[]; ranges: string[] } {
  const vips: string[] = [];
  const ranges: string[] = [];
  for (const a of se.spec.spec.addresses ?? []) {
    const [ip = '', bits] = a.split('/');
    const full = isIP(ip) === 4 ? '32' : '128';
    if (bits === undefined || bits === full) vips.push(canonicalIP(ip));
    else ranges.push(a);
  }
  return { vips: [...new Set(vips)], ranges };
}

/** Istio's `protocol` field plays the role of appProtocol; the port name is the fallback. */
export function serviceEntryPortProtocol(p: ServiceEntryPort): AppProtocol | undefined {
  return portProtocol(p.number, p.name, undefined, p.protocol);
}

export function serviceEntryTransport(se: Resource<ServiceEntry>): 'hbone' | 'plain' {
  return se.spec.spec.location === 'MESH_INTERNAL' ? 'hbone' : 'plain';
}

export function serviceEntryEndpoints(
  se: Resource<ServiceEntry>,
  port: ServiceEntryPort,
  inv: Inventory,
  trustDomain: string,
  notes: ServiceEntryNotes,
): Endpoint[] {
  const spec = se.spec.spec;
  const transport = serviceEntryTransport(se);
  const out: Endpoint[] = [];
  const selector = spec.workloadSelector?.labels;
  if (selector) {
    for (const pod of inv.podsIn(se.namespace)) {
      if (isTerminal(pod) || !labelsMatch(selector, pod.spec.metadata.labels ?? {})) continue;
      const identity = spiffeIdentity(trustDomain, pod.namespace, serviceAccountOf(pod));
      const info = podInfo(pod);
      const conditions = podConditions(pod);
      for (const ip of podIPs(pod)) {
        out.push({
          ip,
          port: port.targetPort ?? port.number,
          identity,
          ...conditions,
          pod: info,
          transport,
        });
      }
    }
    return out;
  }
  if (
    (spec.endpoints?.length ?? 0) === 0 &&
    (spec.resolution === 'DNS' || spec.resolution === 'DNS_ROUND_ROBIN')
  ) {
    // Istio then resolves the hosts themselves.
    for (const h of spec.hosts) notes.unresolved.add(h);
    return out;
  }
  for (const ep of spec.endpoints ?? []) {
    const address = ep.address ?? '';
    if (isIP(address) === 0) {
      notes.unresolved.add(address || '(no address)');
      continue;
    }
    out.push({
      ip: canonicalIP(address),
      port: ep.ports?.[port.name] ?? port.targetPort ?? port.number,
      identity: spiffeIdentity(trustDomain, se.namespace, ep.serviceAccount || 'default'),
      ready: true,
      serving: true,
      terminating: false,
      transport,
    });
  }
  return out;
}
