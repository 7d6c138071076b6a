// The resources in force, indexed the ways the binding rules look them up. Built once per compile;
// every list keeps the store's sorted order so the snapshot comes out the same for the same input.
import type { EndpointSlice } from '../kinds/endpoint-slice.ts';
import type { Gateway } from '../kinds/gateway.ts';
import type { GatewayClass } from '../kinds/gateway-class.ts';
import type { Namespace } from '../kinds/namespace.ts';
import type { Pod } from '../kinds/pod.ts';
import type { Service } from '../kinds/service.ts';
import type { ServiceEntry } from '../kinds/service-entry.ts';
import { type Resource, resourcesOf } from '../resource.ts';
import { type Labels, label, NO_LABELS } from './labels.ts';

const GATEWAY_API = 'gateway.networking.k8s.io';
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export interface Inventory {
  /** A namespace's labels; a namespace without a Namespace resource has none. */
  namespaceLabels(namespace: string): Labels;
  gateway(namespace: string, name: string): Resource<Gateway> | undefined;
  gatewayClass(name: string): Resource<GatewayClass> | undefined;
  readonly services: readonly Resource<Service>[];
  readonly serviceEntries: readonly Resource<ServiceEntry>[];
  /** EndpointSlices labelled `kubernetes.io/service-name: <service>` in the Service's namespace. */
  slicesFor(namespace: string, service: string): readonly Resource<EndpointSlice>[];
  readonly pods: readonly Resource<Pod>[];
  podsIn(namespace: string): readonly Resource<Pod>[];
  pod(namespace: string, name: string): Resource<Pod> | undefined;
}

export function buildInventory(resources: readonly Resource[]): Inventory {
  const namespaces = new Map(resourcesOf<Namespace>(resources, '', 'Namespace').map((r) => [r.name, r]));
  const gateways = new Map(
    resourcesOf<Gateway>(resources, GATEWAY_API, 'Gateway').map((r) => [nsName(r), r]),
  );
  const classes = new Map(
    resourcesOf<GatewayClass>(resources, GATEWAY_API, 'GatewayClass').map((r) => [r.name, r]),
  );
  const services = resourcesOf<Service>(resources, '', 'Service');
  const pods = resourcesOf<Pod>(resources, '', 'Pod');
  const podsByName = new Map(pods.map((p) => [nsName(p), p]));
  const podsByNamespace = groupBy(pods, (p) => p.namespace);
  const slices = groupBy(resourcesOf<EndpointSlice>(resources, 'discovery.k8s.io', 'EndpointSlice'), (s) => {
    const owner = label(s.spec.metadata.labels, SERVICE_NAME_LABEL);
    return owner === undefined ? undefined : `${s.namespace}/${owner}`;
  });
  return {
    namespaceLabels: (ns) => namespaces.get(ns)?.spec.metadata.labels ?? NO_LABELS,
    gateway: (ns, name) => gateways.get(`${ns}/${name}`),
    gatewayClass: (name) => classes.get(name),
    services,
    serviceEntries: resourcesOf<ServiceEntry>(resources, 'networking.istio.io', 'ServiceEntry'),
    slicesFor: (ns, svc) => slices.get(`${ns}/${svc}`) ?? [],
    pods,
    podsIn: (ns) => podsByNamespace.get(ns) ?? [],
    pod: (ns, name) => podsByName.get(`${ns}/${name}`),
  };
}

function nsName(r: Resource): string {
  return `${r.namespace}/${r.name}`;
}

function groupBy<T>(items: readonly T[], keyOf: (item: T) => string | undefined): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    if (key === undefined) continue;
    const list = out.get(key);
    if (list) list.push(item);
    else out.set(key, [item]);
  }
  return out;
}
