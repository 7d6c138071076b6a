// The kinds the controller lists and watches cluster-wide, and how each object is trimmed to what
// the waypoint reads before it is cached: 50k Pods as the API serves them would not fit the budget.
import type { KubeDocument } from './slice-source.ts';

export interface WatchedKind {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly plural: string;
  /** A custom resource: its CRD may be missing, which is logged once and retried. */
  readonly crd: boolean;
  /** Only in this namespace (the mesh config's ConfigMap); cluster-wide otherwise. */
  readonly namespace?: string;
  readonly fieldSelector?: string;
  readonly trim: (obj: KubeDocument) => KubeDocument;
}

/** `/api/v1/...` or `/apis/G/V/...`, cluster-wide or in one namespace. */
export function collectionPath(k: WatchedKind): string {
  const base = k.group === '' ? `/api/${k.version}` : `/apis/${k.group}/${k.version}`;
  return k.namespace ? `${base}/namespaces/${k.namespace}/${k.plural}` : `${base}/${k.plural}`;
}

export function apiVersionOf(k: Pick<WatchedKind, 'group' | 'version'>): string {
  return k.group === '' ? k.version : `${k.group}/${k.version}`;
}

type Json = Record<string, unknown>;

/** Metadata a waypoint reads: no managedFields, no last-applied annotation, no uid noise. */
function trimMetadata(meta: KubeDocument['metadata']): KubeDocument['metadata'] {
  const out: Json = { name: meta.name };
  if (meta.namespace) out.namespace = meta.namespace;
  if (meta.resourceVersion) out.resourceVersion = meta.resourceVersion;
  for (const field of ['labels', 'ownerReferences', 'deletionTimestamp', 'generation']) {
    if (meta[field] !== undefined) out[field] = meta[field];
  }
  const annotations = meta.annotations as Record<string, string> | undefined;
  if (annotations) {
    const kept = Object.entries(annotations).filter(([k]) => !k.startsWith('kubectl.kubernetes.io/'));
    if (kept.length > 0) out.annotations = Object.fromEntries(kept);
  }
  return out as KubeDocument['metadata'];
}

/** apiVersion, kind, trimmed metadata and spec; status dropped (istiod writes it, we do not read it). */
function specOnly(obj: KubeDocument): KubeDocument {
  const out: Json = { apiVersion: obj.apiVersion, kind: obj.kind, metadata: trimMetadata(obj.metadata) };
  if (obj.spec !== undefined) out.spec = obj.spec;
  return out as KubeDocument;
}

/** EndpointSlice has no spec: its fields are top-level. */
function endpointSlice(obj: KubeDocument): KubeDocument {
  const { apiVersion, kind, addressType, endpoints, ports } = obj;
  return { apiVersion, kind, metadata: trimMetadata(obj.metadata), addressType, endpoints, ports };
}

/** Pods: serviceAccountName, named container ports, IPs, phase and the Ready condition only. */
function pod(obj: KubeDocument): KubeDocument {
  const spec = (obj.spec ?? {}) as Json;
  const status = (obj.status ?? {}) as Json;
  const containers = ((spec.containers as Json[] | undefined) ?? []).map((c) => ({
    name: c.name,
    ...(c.ports ? { ports: c.ports } : {}),
  }));
  const conditions = ((status.conditions as Json[] | undefined) ?? [])
    .filter((c) => c.type === 'Ready')
    .map((c) => ({ type: c.type, status: c.status }));
  return {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    metadata: trimMetadata(obj.metadata),
    spec: { serviceAccountName: spec.serviceAccountName, containers },
    status: { phase: status.phase, podIP: status.podIP, podIPs: status.podIPs, conditions },
  };
}

/** ConfigMap `istio`: only the `mesh` key. */
function meshConfig(obj: KubeDocument): KubeDocument {
  const data = (obj.data ?? {}) as Record<string, string>;
  const kept = data.mesh === undefined ? {} : { mesh: data.mesh };
  return { apiVersion: obj.apiVersion, kind: obj.kind, metadata: trimMetadata(obj.metadata), data: kept };
}

function kind(
  group: string,
  version: string,
  kindName: string,
  plural: string,
  trim: (o: KubeDocument) => KubeDocument = specOnly,
): WatchedKind {
  return { group, version, kind: kindName, plural, crd: group !== '' && group !== 'discovery.k8s.io', trim };
}

const GW = 'gateway.networking.k8s.io';

/** Everything a waypoint's slice may draw from; the mesh ConfigMap lives in rootNamespace. */
export function watchedKinds(rootNamespace: string): WatchedKind[] {
  return [
    kind('', 'v1', 'Namespace', 'namespaces'),
    kind('', 'v1', 'Service', 'services'),
    kind('', 'v1', 'Pod', 'pods', pod),
    kind('discovery.k8s.io', 'v1', 'EndpointSlice', 'endpointslices', endpointSlice),
    kind(GW, 'v1', 'Gateway', 'gateways'),
    kind(GW, 'v1', 'GatewayClass', 'gatewayclasses'),
    kind(GW, 'v1', 'HTTPRoute', 'httproutes'),
    kind(GW, 'v1', 'GRPCRoute', 'grpcroutes'),
    kind(GW, 'v1alpha2', 'TCPRoute', 'tcproutes'),
    kind(GW, 'v1beta1', 'ReferenceGrant', 'referencegrants'),
    kind('networking.istio.io', 'v1', 'ServiceEntry', 'serviceentries'),
    kind('networking.istio.io', 'v1', 'VirtualService', 'virtualservices'),
    kind('networking.istio.io', 'v1', 'DestinationRule', 'destinationrules'),
    kind('security.istio.io', 'v1', 'AuthorizationPolicy', 'authorizationpolicies'),
    kind('security.istio.io', 'v1', 'RequestAuthentication', 'requestauthentications'),
    kind('waypoint.node-waypoint.io', 'v1alpha1', 'BackendTrafficPolicy', 'backendtrafficpolicies'),
    kind('telemetry.istio.io', 'v1', 'Telemetry', 'telemetries'),
    {
      ...kind('', 'v1', 'ConfigMap', 'configmaps', meshConfig),
      namespace: rootNamespace,
      fieldSelector: 'metadata.name=istio',
    },
  ];
}
