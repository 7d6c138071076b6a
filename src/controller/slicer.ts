// What one waypoint Gateway must see, picked from the cluster with the same binding rule the file
// compile uses (config/compile/binding.ts). It also records every key it looked at ("interest"),
// present or not, so a later change to any of them marks this Gateway's slice stale.
import { requestsGateway, serviceWaypoint, workloadWaypoint } from '../../config/compile/binding.ts';
import { GATEWAY_NAME_LABELS } from '../../config/compile/gateway.ts';
import { labelsMatch } from '../../config/compile/labels.ts';
import { type ClusterIndex, labelsOf } from './cluster-index.ts';
import { type DocumentKey, documentKey, type KubeDocument } from './slice-source.ts';

export interface SliceOptions {
  readonly rootNamespace: string;
  readonly clusterDomain: string;
}

export interface ComputedSlice {
  readonly documents: Map<DocumentKey, KubeDocument>;
  /** Keys (document keys, `pods:NS`, `slices:NS/SVC`) whose change may alter this slice. */
  readonly interest: Set<string>;
}

type Ref = { readonly namespace: string; readonly name: string };
type Json = Record<string, unknown>;

const WAYPOINT_FOR = 'istio.io/waypoint-for';
const ROUTE_KINDS = ['HTTPRoute', 'GRPCRoute', 'TCPRoute'];
const POLICY_KINDS = ['AuthorizationPolicy', 'RequestAuthentication'];

class SliceBuilder {
  readonly documents = new Map<DocumentKey, KubeDocument>();
  readonly interest = new Set<string>();
  /** Bound or backend Services and ServiceEntries: `Kind/ns/name`. */
  readonly services = new Set<string>();
  readonly hosts = new Set<string>();

  readonly index: ClusterIndex;
  readonly opts: SliceOptions;

  constructor(index: ClusterIndex, opts: SliceOptions) {
    this.index = index;
    this.opts = opts;
  }

  add(doc: KubeDocument | undefined): void {
    if (doc) this.documents.set(documentKey(doc), doc);
  }

  /** Looks a key up, remembers the interest, and adds what is there. */
  addKey(key: DocumentKey): KubeDocument | undefined {
    this.interest.add(key);
    const doc = this.index.get(key);
    this.add(doc);
    return doc;
  }

  addNamespace(ns: string): void {
    this.addKey(`/Namespace//${ns}`);
  }
}

export function computeSlice(index: ClusterIndex, gateway: Ref, opts: SliceOptions): ComputedSlice {
  const b = new SliceBuilder(index, opts);
  const gw = b.addKey(`gateway.networking.k8s.io/Gateway/${gateway.namespace}/${gateway.name}`);
  b.addNamespace(gateway.namespace);
  b.add(meshConfig(index, opts.rootNamespace));
  // Its own replicas, which the compile counts (waypointReplicas).
  b.interest.add(replicaKey(gateway.namespace, gateway.name));
  for (const pod of index.inNamespace('Pod', gateway.namespace)) {
    if (GATEWAY_NAME_LABELS.some((l) => labelsOf(pod)?.[l] === gateway.name)) b.add(pod);
  }
  if (!gw) return b;
  const className = (gw.spec as Json | undefined)?.gatewayClassName as string | undefined;
  const gwClass = b.addKey(`gateway.networking.k8s.io/GatewayClass//${className}`);
  bindServices(b, gateway);
  if (takesWorkloads(gw, gwClass)) {
    b.interest.add(`workloads:${gateway.namespace}/${gateway.name}`);
    bindWorkloads(b, gateway);
  }
  addRoutes(b, gateway);
  addPolicies(b, gateway, className);
  addTelemetry(b, gateway);
  addHostRules(b);
  return b;
}

function meshConfig(index: ClusterIndex, root: string): KubeDocument | undefined {
  return index.get(`/ConfigMap/${root}/istio`);
}

/** Objects whose own label names the Gateway, or whose namespace's label does. */
function candidates(b: SliceBuilder, kind: string, gateway: Ref): KubeDocument[] {
  const out = new Map<DocumentKey, KubeDocument>();
  for (const d of b.index.namedByOwnLabel(`${gateway.namespace}/${gateway.name}`)) {
    if (d.kind === kind) out.set(documentKey(d), d);
  }
  for (const ns of b.index.ofKind('Namespace')) {
    if (!requestsGateway(workloadWaypoint(undefined, ns.metadata.name, labelsOf(ns) ?? {}), gateway))
      continue;
    for (const d of b.index.inNamespace(kind, ns.metadata.name)) out.set(documentKey(d), d);
  }
  return [...out.values()];
}

function bindServices(b: SliceBuilder, gateway: Ref): void {
  for (const kind of ['Service', 'ServiceEntry']) {
    for (const svc of candidates(b, kind, gateway)) {
      const ns = svc.metadata.namespace ?? '';
      if (!requestsGateway(serviceWaypoint(labelsOf(svc), ns, b.index.namespaceLabels(ns)), gateway))
        continue;
      addService(b, svc);
    }
  }
}

function bindWorkloads(b: SliceBuilder, gateway: Ref): void {
  for (const pod of candidates(b, 'Pod', gateway)) {
    const ns = pod.metadata.namespace ?? '';
    if (!requestsGateway(workloadWaypoint(labelsOf(pod), ns, b.index.namespaceLabels(ns)), gateway)) continue;
    b.add(pod);
    b.addNamespace(ns);
  }
}

function takesWorkloads(gw: KubeDocument, gwClass: KubeDocument | undefined): boolean {
  const value = labelsOf(gw)?.[WAYPOINT_FOR] ?? labelsOf(gwClass)?.[WAYPOINT_FOR] ?? 'service';
  return value === 'workload' || value === 'all';
}

/** A Service or ServiceEntry with its namespace, endpoints and the pods behind them. */
function addService(b: SliceBuilder, svc: KubeDocument): void {
  const ns = svc.metadata.namespace ?? '';
  const name = svc.metadata.name;
  b.add(svc);
  b.addNamespace(ns);
  b.services.add(`${svc.kind}/${ns}/${name}`);
  const spec = (svc.spec ?? {}) as Json;
  if (svc.kind === 'ServiceEntry') {
    for (const h of (spec.hosts as string[] | undefined) ?? []) b.hosts.add(h);
    const selector = (spec.workloadSelector as { labels?: Record<string, string> } | undefined)?.labels;
    if (selector) addSelectedPods(b, ns, selector);
    return;
  }
  for (const suffix of [`.${ns}`, `.${ns}.svc`, `.${ns}.svc.${b.opts.clusterDomain}`])
    b.hosts.add(name + suffix);
  b.interest.add(`slices:${ns}/${name}`);
  const slices = b.index.slicesOf(ns, name);
  for (const slice of slices) {
    b.add(slice);
    for (const ep of (slice.endpoints as Json[] | undefined) ?? []) {
      const ref = ep.targetRef as { kind?: string; name?: string; namespace?: string } | undefined;
      if (ref?.kind === 'Pod' && ref.name) b.addKey(`/Pod/${ref.namespace || ns}/${ref.name}`);
    }
  }
  // Without EndpointSlices the compile falls back to the selector over the namespace's pods.
  const selector = spec.selector as Record<string, string> | undefined;
  if (slices.length === 0 && selector) addSelectedPods(b, ns, selector);
}

function addSelectedPods(b: SliceBuilder, ns: string, selector: Record<string, string>): void {
  b.interest.add(`pods:${ns}`);
  for (const pod of b.index.inNamespace('Pod', ns)) {
    if (labelsMatch(selector, labelsOf(pod) ?? {})) b.add(pod);
  }
}

/** Routes whose parent is a bound Service or ServiceEntry or the Gateway, and their backends. */
function addRoutes(b: SliceBuilder, gateway: Ref): void {
  const bound = new Set(b.services);
  for (const kind of ROUTE_KINDS) {
    for (const route of b.index.ofKind(kind)) {
      const ns = route.metadata.namespace ?? '';
      const spec = (route.spec ?? {}) as Json;
      const parents = (spec.parentRefs as Json[] | undefined) ?? [];
      if (!parents.some((p) => isOurParent(p, ns, bound, gateway))) continue;
      b.add(route);
      b.addNamespace(ns);
      for (const rule of (spec.rules as Json[] | undefined) ?? []) {
        for (const ref of (rule.backendRefs as Json[] | undefined) ?? []) addBackend(b, ref, ns);
      }
    }
  }
}

function isOurParent(p: Json, routeNs: string, bound: Set<string>, gateway: Ref): boolean {
  const kind = (p.kind as string | undefined) ?? 'Gateway';
  const ns = (p.namespace as string | undefined) ?? routeNs;
  if (kind === 'Gateway') return ns === gateway.namespace && p.name === gateway.name;
  return bound.has(`${kind}/${ns}/${p.name as string}`);
}

function addBackend(b: SliceBuilder, ref: Json, routeNs: string): void {
  const kind = (ref.kind as string | undefined) ?? 'Service';
  const ns = (ref.namespace as string | undefined) ?? routeNs;
  const name = ref.name as string;
  if (ns !== routeNs) {
    for (const grant of b.index.inNamespace('ReferenceGrant', ns)) b.add(grant);
  }
  if (b.services.has(`${kind}/${ns}/${name}`)) return;
  const key =
    kind === 'ServiceEntry' ? `networking.istio.io/ServiceEntry/${ns}/${name}` : `/Service/${ns}/${name}`;
  if (kind !== 'Service' && kind !== 'ServiceEntry') return;
  const svc = b.addKey(key);
  if (svc) addService(b, svc);
}

/** AuthorizationPolicy, RequestAuthentication and BackendTrafficPolicy by what they target. */
function addPolicies(b: SliceBuilder, gateway: Ref, className: string | undefined): void {
  for (const kind of [...POLICY_KINDS, 'BackendTrafficPolicy']) {
    for (const policy of b.index.ofKind(kind)) {
      const ns = policy.metadata.namespace ?? '';
      const spec = (policy.spec ?? {}) as Json;
      const refs = [spec.targetRef, ...((spec.targetRefs as unknown[] | undefined) ?? [])].filter(
        Boolean,
      ) as Json[];
      if (refs.some((r) => targets(b, r, ns, gateway, className))) {
        b.add(policy);
        b.addNamespace(ns);
      }
    }
  }
}

/**
 * Telemetry of the root namespace (the mesh default), the waypoint's namespace and its Services'
 * namespaces: the waypoint's own compile picks what applies (targetRefs, selector, levels).
 */
function addTelemetry(b: SliceBuilder, gateway: Ref): void {
  const namespaces = new Set([b.opts.rootNamespace, gateway.namespace]);
  for (const key of b.services) namespaces.add(key.split('/')[1]!);
  for (const t of b.index.ofKind('Telemetry')) if (namespaces.has(t.metadata.namespace ?? '')) b.add(t);
}

function targets(
  b: SliceBuilder,
  ref: Json,
  ns: string,
  gateway: Ref,
  className: string | undefined,
): boolean {
  const name = ref.name as string;
  switch (ref.kind) {
    case 'Gateway':
      return ns === gateway.namespace && name === gateway.name;
    case 'GatewayClass':
      return ns === b.opts.rootNamespace && name === className;
    case 'Service':
    case 'ServiceEntry':
      return b.services.has(`${ref.kind}/${ns}/${name}`);
    default:
      return [...b.documents.values()].some(
        (d) => d.kind === ref.kind && d.metadata.namespace === ns && d.metadata.name === name,
      );
  }
}

/** VirtualService and DestinationRule whose host names a Service of the slice. */
function addHostRules(b: SliceBuilder): void {
  for (const kind of ['VirtualService', 'DestinationRule']) {
    for (const rule of b.index.ofKind(kind)) {
      const ns = rule.metadata.namespace ?? '';
      const spec = (rule.spec ?? {}) as Json;
      const hosts =
        kind === 'DestinationRule' ? [spec.host as string] : ((spec.hosts as string[] | undefined) ?? []);
      if (!exported(spec) || !hosts.some((h) => hostMatches(b, h, ns))) continue;
      b.add(rule);
      b.addNamespace(ns);
    }
  }
}

/** exportTo absent, `*`, or any list: the waypoint serves consumers of every namespace. */
function exported(spec: Json): boolean {
  const to = spec.exportTo as string[] | undefined;
  return !to || to.length > 0;
}

function hostMatches(b: SliceBuilder, host: string | undefined, ns: string): boolean {
  if (!host) return false;
  if (host === '*') return true;
  if (host.startsWith('*.')) {
    const suffix = host.slice(1);
    return [...b.hosts].some((h) => h.endsWith(suffix));
  }
  // A short name is relative to the rule's namespace.
  const full = host.includes('.') ? host : `${host}.${ns}.svc.${b.opts.clusterDomain}`;
  return b.hosts.has(full) || b.hosts.has(host);
}

/** The waypoint Gateway a labelled object names, if any (for change routing). */
export function namedWaypoint(doc: KubeDocument | undefined, index: ClusterIndex): string | undefined {
  if (!doc) return undefined;
  const ns = doc.metadata.namespace ?? doc.metadata.name;
  const labels = labelsOf(doc);
  const nsLabels = doc.kind === 'Namespace' ? (labels ?? {}) : index.namespaceLabels(ns);
  const req = workloadWaypoint(doc.kind === 'Namespace' ? undefined : labels, ns, nsLabels);
  return req ? `${req.ref.namespace}/${req.ref.name}` : undefined;
}

/** The interest key a waypoint replica Pod changes: `replica:NS/GATEWAY`. */
export function replicaKey(namespace: string, gateway: string): string {
  return `replica:${namespace}/${gateway}`;
}

/** The replica keys a Pod's labels touch. */
export function replicaKeysOf(pod: KubeDocument): string[] {
  const labels = labelsOf(pod) ?? {};
  const ns = pod.metadata.namespace ?? '';
  return GATEWAY_NAME_LABELS.flatMap((l) => (labels[l] ? [replicaKey(ns, labels[l])] : []));
}
