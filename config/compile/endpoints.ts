// The endpoints of one Service port. EndpointSlices are the source of truth when any names the
// Service; only when none does (a hand-written config without slices) are endpoints derived from
// the Service's selector and the Pods, the way the EndpointSlice controller would.
import { isIP } from 'node:net';
import type { EndpointSlice } from '../kinds/endpoint-slice.ts';
import type { Service, ServicePort } from '../kinds/service.ts';
import type { Endpoint } from '../model.ts';
import type { Resource } from '../resource.ts';
import { canonicalIP } from './addresses.ts';
import type { Inventory } from './inventory.ts';
import { labelsMatch } from './labels.ts';
import {
  isTerminal,
  namedContainerPort,
  podConditions,
  podInfo,
  podIPs,
  serviceAccountOf,
  spiffeIdentity,
} from './pods.ts';

/** What went wrong while collecting endpoints, gathered per Service so warnings stay few. */
export interface EndpointNotes {
  /** Endpoint IPs whose identity had to be assumed (no Pod in the configuration). */
  readonly withoutPod: Set<string>;
  /** Pods skipped because they have no container port named like the targetPort. */
  readonly missingNamedPort: Set<string>;
}

export function newEndpointNotes(): EndpointNotes {
  return { withoutPod: new Set(), missingNamedPort: new Set() };
}

export function serviceEndpoints(
  svc: Resource<Service>,
  port: ServicePort,
  families: ReadonlySet<number>,
  inv: Inventory,
  trustDomain: string,
  notes: EndpointNotes,
): Endpoint[] {
  const slices = inv.slicesFor(svc.namespace, svc.name);
  if (slices.length > 0) return fromSlices(svc, port, slices, inv, trustDomain, notes);
  const selector = svc.spec.spec?.selector;
  // An empty selector means "endpoints managed elsewhere", exactly like no selector.
  if (!selector || Object.keys(selector).length === 0) return [];
  return fromPods(svc, port, selector, families, inv, trustDomain, notes);
}

function fromSlices(
  svc: Resource<Service>,
  port: ServicePort,
  slices: readonly Resource<EndpointSlice>[],
  inv: Inventory,
  trustDomain: string,
  notes: EndpointNotes,
): Endpoint[] {
  const out = new Map<string, Endpoint>();
  const wanted = port.name ?? '';
  for (const slice of slices) {
    const s = slice.spec;
    if (s.addressType === 'FQDN') continue;
    // Both unnamed (absent or "") is a match: a single-port Service leaves the name out.
    const slicePort = s.ports?.find((p) => (p.name ?? '') === wanted);
    if (!slicePort?.port) continue;
    for (const ep of s.endpoints ?? []) {
      // Consumers use the first address; the rest are interchangeable (discovery/v1 API doc).
      const first = ep.addresses[0];
      if (first === undefined) continue;
      const ip = canonicalIP(first);
      const ready = ep.conditions?.ready ?? true;
      const serving = ep.conditions?.serving ?? ready;
      const terminating = ep.conditions?.terminating ?? false;
      const ref = ep.targetRef;
      const pod =
        ref && (ref.kind ?? 'Pod') === 'Pod' && ref.name
          ? inv.pod(ref.namespace || slice.namespace, ref.name)
          : undefined;
      let identity: string;
      if (pod) {
        identity = spiffeIdentity(trustDomain, pod.namespace, serviceAccountOf(pod));
      } else {
        identity = spiffeIdentity(trustDomain, svc.namespace, 'default');
        notes.withoutPod.add(ip);
      }
      const endpoint: Endpoint = {
        ip,
        port: slicePort.port,
        identity,
        ready,
        serving,
        terminating,
        ...(pod ? { pod: podInfo(pod) } : {}),
      };
      // Slices may overlap while they are being rebalanced; one endpoint per address, ready preferred.
      const key = `${ip}|${slicePort.port}`;
      const seen = out.get(key);
      if (!seen || (!seen.ready && endpoint.ready)) out.set(key, endpoint);
    }
  }
  return [...out.values()];
}

function fromPods(
  svc: Resource<Service>,
  port: ServicePort,
  selector: Readonly<Record<string, string>>,
  families: ReadonlySet<number>,
  inv: Inventory,
  trustDomain: string,
  notes: EndpointNotes,
): Endpoint[] {
  const out: Endpoint[] = [];
  for (const pod of inv.podsIn(svc.namespace)) {
    if (isTerminal(pod) || !labelsMatch(selector, pod.spec.metadata.labels ?? {})) continue;
    // One slice per IP family in Kubernetes: a pod address counts only for the Service's families.
    const ips = podIPs(pod).filter((ip) => families.has(isIP(ip)));
    if (ips.length === 0) continue;
    const target = port.targetPort ?? port.port;
    const podPort = typeof target === 'number' ? target : namedContainerPort(pod, target);
    if (podPort === undefined) {
      notes.missingNamedPort.add(`${pod.name} (targetPort "${target}")`);
      continue;
    }
    const conditions = podConditions(pod);
    const identity = spiffeIdentity(trustDomain, pod.namespace, serviceAccountOf(pod));
    const info = podInfo(pod);
    for (const ip of ips) out.push({ ip, port: podPort, identity, ...conditions, pod: info });
  }
  return out;
}
