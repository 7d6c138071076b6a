// Resources in force → the frozen Snapshot the data path reads. Decides, as istiod would, which
// Service ports and which pods send their traffic through this waypoint (hbone-ambient.md §2.1,
// §2.2) and how each port's bytes are treated (§5.2). Pure: the same resources give the same
// snapshot (apart from createdAt, which comes from opts.now).
import { isIP } from 'node:net';
import { compileAccessLogging } from './compile/access-logging.ts';
import { addressKey, canonicalIP } from './compile/addresses.ts';
import { requestsGateway, serviceWaypoint, workloadWaypoint } from './compile/binding.ts';
import { newEndpointNotes, serviceEndpoints } from './compile/endpoints.ts';
import { resolveGateway, type WaypointGateway } from './compile/gateway.ts';
import { buildInventory, type Inventory } from './compile/inventory.ts';
import { NO_LABELS } from './compile/labels.ts';
import {
  isTerminal,
  podConditions,
  podInfo,
  podIPs,
  serviceAccountOf,
  spiffeIdentity,
} from './compile/pods.ts';
import { portProtocol } from './compile/protocol.ts';
import {
  newServiceEntryNotes,
  serviceEntryEndpoints,
  serviceEntryInfo,
  serviceEntryPortProtocol,
  serviceEntryVips,
} from './compile/service-entry.ts';
import { USE_WAYPOINT_LABEL, type WaypointRequest } from './compile/use-waypoint.ts';
import { deepFreeze, FrozenMap } from './freeze.ts';
import type { Service } from './kinds/service.ts';
import type { ServiceEntry } from './kinds/service-entry.ts';
import type {
  CompileOptions,
  ConfigMessage,
  Endpoint,
  PodInfo,
  ServiceInfo,
  ServicePortBinding,
  Snapshot,
  TrafficType,
  WorkloadBinding,
} from './model.ts';
import type { Resource } from './resource.ts';

/**
 * Compiles one filter's configuration from the same resources. Called once per snapshot, after
 * bindings are decided (base); its config lands in `snapshot.filters[name]` and its messages in
 * `snapshot.messages`. A compiler that throws fails the whole compile, so the previous snapshot
 * stays in force rather than one missing a filter's config.
 */
export type FilterCompiler = (
  resources: readonly Resource[],
  base: Omit<Snapshot, 'filters'>,
) => { config: unknown; messages: ConfigMessage[] };

export interface CompileInput extends CompileOptions {
  /** Clock for `createdAt`; tests pin it. Default: the system clock. */
  readonly now?: () => Date;
}

const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';

/**
 * Builds the snapshot for version from the resources in force. Never throws for configuration
 * problems: they become `messages` and `gateway.conditions`.
 */
export function compileSnapshot(
  resources: readonly Resource[],
  opts: CompileInput,
  version: number,
  filterCompilers: Readonly<Record<string, FilterCompiler>> = {},
): Snapshot {
  const messages: ConfigMessage[] = [];
  const inv = buildInventory(resources);
  const gw = resolveGateway(inv, opts.gateway, messages);
  const trafficType = gw.status.trafficType;

  const services =
    gw.serving && takes(trafficType, 'service') ? bindServices(inv, gw, opts, messages) : new Map();
  const workloads =
    gw.serving && takes(trafficType, 'workload') ? bindWorkloads(inv, gw, opts, messages) : new Map();
  if (gw.serving) reportRefusals(inv, gw, opts, messages);

  const conditions = [...gw.status.conditions];
  if (gw.serving) {
    conditions.push(
      `Accepted: allowedRoutes ${gw.allowedRoutes}; ${services.size} service address(es), ${workloads.size} workload address(es)`,
    );
  }

  const accessLogging = compileAccessLogging(
    resources,
    opts.gateway,
    opts.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN,
    messages,
  );
  const base: Omit<Snapshot, 'filters'> = deepFreeze({
    version,
    createdAt: (opts.now ?? (() => new Date()))().toISOString(),
    trustDomain: opts.trustDomain,
    gateway: { ...gw.status, conditions },
    services: new FrozenMap(services),
    workloads: new FrozenMap(workloads),
    pods: new FrozenMap(podsByIp(inv)),
    ...(accessLogging ? { accessLogging } : {}),
    resourceCounts: countByKind(resources),
    messages,
  });

  const filters: Record<string, unknown> = {};
  const filterMessages: ConfigMessage[] = [];
  for (const name of Object.keys(filterCompilers).sort()) {
    const compile = filterCompilers[name];
    if (!compile) continue;
    const out = compile(resources, base);
    filters[name] = out.config;
    filterMessages.push(...out.messages);
  }
  return deepFreeze({ ...base, messages: [...base.messages, ...filterMessages], filters });
}

/** Running pods by IP (the first pod listed keeps a shared IP), for source telemetry. */
function podsByIp(inv: Inventory): Map<string, PodInfo> {
  const out = new Map<string, PodInfo>();
  for (const pod of inv.pods) {
    if (isTerminal(pod)) continue;
    const info = podInfo(pod);
    for (const ip of podIPs(pod)) if (!out.has(ip)) out.set(ip, info);
  }
  return out;
}

function takes(trafficType: TrafficType, kind: 'service' | 'workload'): boolean {
  return trafficType === kind || trafficType === 'all';
}

function isOurs(req: WaypointRequest | undefined, opts: CompileOptions): req is WaypointRequest {
  return requestsGateway(req, opts.gateway);
}

function serviceRequest(
  inv: Inventory,
  svc: Resource<Service> | Resource<ServiceEntry>,
): WaypointRequest | undefined {
  return serviceWaypoint(svc.spec.metadata.labels, svc.namespace, inv.namespaceLabels(svc.namespace));
}

function bindServices(
  inv: Inventory,
  gw: WaypointGateway,
  opts: CompileInput,
  messages: ConfigMessage[],
): Map<string, ServicePortBinding> {
  const out = new Map<string, ServicePortBinding>();
  for (const svc of inv.services) {
    if (!isOurs(serviceRequest(inv, svc), opts) || !gw.admits(svc.namespace)) continue;
    bindService(svc, inv, opts, messages, out);
  }
  bindServiceEntries(inv, gw, opts, messages, out);
  return out;
}

/** Every ClusterIP × port of one Service. */
function bindService(
  svc: Resource<Service>,
  inv: Inventory,
  opts: CompileInput,
  messages: ConfigMessage[],
  out: Map<string, ServicePortBinding>,
): void {
  const vips = clusterIPs(svc);
  // Headless and IP-less (ExternalName) Services have no VIP to be dialed; nothing to bind.
  if (vips.length === 0) return;
  const families = new Set(vips.map((ip) => isIP(ip)));
  const clusterDomain = opts.clusterDomain || DEFAULT_CLUSTER_DOMAIN;
  const service: ServiceInfo = {
    namespace: svc.namespace,
    name: svc.name,
    hostname: `${svc.name}.${svc.namespace}.svc.${clusterDomain}`,
    labels: svc.spec.metadata.labels ?? NO_LABELS,
  };
  const notes = newEndpointNotes();
  for (const port of svc.spec.spec?.ports ?? []) {
    const protocol = portProtocol(port.port, port.name, port.protocol, port.appProtocol);
    if (protocol === undefined) continue;
    const endpoints: Endpoint[] = serviceEndpoints(svc, port, families, inv, opts.trustDomain, notes);
    if (endpoints.length === 0) messages.push(noEndpoints(svc, port.port));
    const binding = { service, port: port.port, portName: port.name ?? undefined, protocol, endpoints };
    bindPort(svc, binding, vips, 'spec.clusterIPs', out, messages);
  }
  if (notes.withoutPod.size > 0) {
    const identity = spiffeIdentity(opts.trustDomain, svc.namespace, 'default');
    const text = `no Pod in the configuration for endpoint(s) ${list(notes.withoutPod)}; assuming identity ${identity}`;
    messages.push(serviceWarning(svc, text, undefined));
  }
  if (notes.missingNamedPort.size > 0) {
    const text = `pod(s) without the named container port skipped: ${list(notes.missingNamedPort)}`;
    messages.push(serviceWarning(svc, text, 'spec.ports'));
  }
}

/**
 * ServiceEntries bound like Services (hbone-ambient.md §2.1): every single address of
 * spec.addresses × every port. A Service that already holds a VIP:port keeps it.
 */
function bindServiceEntries(
  inv: Inventory,
  gw: WaypointGateway,
  opts: CompileInput,
  messages: ConfigMessage[],
  out: Map<string, ServicePortBinding>,
): void {
  for (const se of inv.serviceEntries) {
    if (!isOurs(serviceRequest(inv, se), opts) || !gw.admits(se.namespace)) continue;
    const { vips, ranges } = serviceEntryVips(se);
    if (ranges.length > 0) {
      const text = `address range(s) ${ranges.join(', ')} cannot be bound as a VIP; ignored`;
      messages.push(serviceWarning(se, text, 'spec.addresses'));
    }
    if (vips.length === 0) {
      messages.push(
        serviceWarning(
          se,
          'has no spec.addresses, so it cannot be dialled by VIP through this waypoint (Istio auto-allocates addresses; node-waypoint does not yet): not bound',
          'spec.addresses',
        ),
      );
      continue;
    }
    bindServiceEntry(se, vips, inv, opts, messages, out);
  }
}

function bindServiceEntry(
  se: Resource<ServiceEntry>,
  vips: readonly string[],
  inv: Inventory,
  opts: CompileInput,
  messages: ConfigMessage[],
  out: Map<string, ServicePortBinding>,
): void {
  const service = serviceEntryInfo(se);
  const notes = newServiceEntryNotes();
  for (const port of se.spec.spec.ports ?? []) {
    const protocol = serviceEntryPortProtocol(port);
    if (protocol === undefined) continue;
    const endpoints = serviceEntryEndpoints(se, port, inv, opts.trustDomain, notes);
    // DNS endpoints are warned about below, once.
    if (endpoints.length === 0 && notes.unresolved.size === 0) messages.push(noEndpoints(se, port.number));
    const binding = { service, port: port.number, portName: port.name, protocol, endpoints };
    bindPort(se, binding, vips, 'spec.addresses', out, messages);
  }
  if (notes.unresolved.size > 0) {
    const text = `DNS endpoints are not supported yet; skipped: ${list(notes.unresolved)}`;
    messages.push(serviceWarning(se, text, 'spec.endpoints'));
  }
}

/**
 * One port of a Service or ServiceEntry on each of its VIPs; a VIP:port already bound stays with
 * whoever bound it first (Services before ServiceEntries).
 */
function bindPort(
  r: Resource<Service> | Resource<ServiceEntry>,
  b: Omit<ServicePortBinding, 'kind' | 'key'>,
  vips: readonly string[],
  addressField: string,
  out: Map<string, ServicePortBinding>,
  messages: ConfigMessage[],
): void {
  for (const vip of vips) {
    const key = addressKey(vip, b.port);
    const taken = out.get(key);
    if (taken) {
      const holder = `${r.kind === 'Service' ? 'Service ' : ''}${taken.service.namespace}/${taken.service.name}`;
      messages.push(serviceWarning(r, `${key} is already bound to ${holder}; ignored here`, addressField));
      continue;
    }
    out.set(key, { kind: 'service', key, ...b });
  }
}

function noEndpoints(r: Resource, port: number): ConfigMessage {
  return serviceWarning(r, `port ${port} is bound to this waypoint but has no endpoints`, 'spec.ports');
}

function bindWorkloads(
  inv: Inventory,
  gw: WaypointGateway,
  opts: CompileInput,
  messages: ConfigMessage[],
): Map<string, WorkloadBinding> {
  const out = new Map<string, WorkloadBinding>();
  for (const pod of inv.pods) {
    if (isTerminal(pod)) continue;
    const req = workloadWaypoint(pod.spec.metadata.labels, pod.namespace, inv.namespaceLabels(pod.namespace));
    if (!isOurs(req, opts) || !gw.admits(pod.namespace)) continue;
    const info = podInfo(pod);
    const identity = spiffeIdentity(opts.trustDomain, pod.namespace, serviceAccountOf(pod));
    const { ready } = podConditions(pod);
    for (const ip of podIPs(pod)) {
      const taken = out.get(ip);
      if (taken) {
        messages.push({
          severity: 'warning',
          message: `${pod.origin}: Pod ${pod.namespace}/${pod.name}: IP ${ip} is also Pod ${taken.pod.namespace}/${taken.pod.name}'s; keeping that one`,
          origin: pod.origin,
          kind: 'Pod',
          namespace: pod.namespace,
          name: pod.name,
        });
        continue;
      }
      out.set(ip, { kind: 'workload', ip: canonicalIP(ip), pod: info, identity, ready });
    }
  }
  return out;
}

/**
 * Objects that ask for this waypoint but are refused: a namespace outside allowedRoutes (istiod's
 * ReportWaypointAttachmentDenied), or an object whose own label asks for a traffic type this
 * waypoint does not take (ReportWaypointUnsupportedTrafficType). A namespace-wide label reaching
 * objects of the other traffic type is normal and not reported.
 */
function reportRefusals(
  inv: Inventory,
  gw: WaypointGateway,
  opts: CompileInput,
  messages: ConfigMessage[],
): void {
  const seen = new Set<string>();
  const add = (m: ConfigMessage): void => {
    if (seen.has(m.message)) return;
    seen.add(m.message);
    messages.push(m);
  };
  const gwName = `${opts.gateway.namespace}/${opts.gateway.name}`;
  const tt = gw.status.trafficType;
  const consider = (r: Resource, req: WaypointRequest | undefined, traffic: 'service' | 'workload'): void => {
    if (!isOurs(req, opts)) return;
    if (!gw.admits(r.namespace)) {
      const text = `asks for waypoint ${gwName} (${USE_WAYPOINT_LABEL}), but its HBONE listener's allowedRoutes (${gw.allowedRoutes}) does not admit namespace ${r.namespace}`;
      add(
        req.via === 'object'
          ? objectWarning(r, text)
          : {
              severity: 'warning',
              message: `Namespace ${r.namespace}: ${text}`,
              kind: 'Namespace',
              name: r.namespace,
            },
      );
    } else if (req.via === 'object' && !takes(tt, traffic)) {
      add(objectWarning(r, `asks for waypoint ${gwName}, which takes ${tt} traffic, not ${traffic} traffic`));
    }
  };
  for (const svc of inv.services) consider(svc, serviceRequest(inv, svc), 'service');
  for (const se of inv.serviceEntries) consider(se, serviceRequest(inv, se), 'service');
  for (const pod of inv.pods) {
    if (isTerminal(pod)) continue;
    consider(
      pod,
      workloadWaypoint(pod.spec.metadata.labels, pod.namespace, inv.namespaceLabels(pod.namespace)),
      'workload',
    );
  }
}

/** spec.clusterIPs, else spec.clusterIP; none when headless or unallocated. */
function clusterIPs(svc: Resource<Service>): string[] {
  const spec = svc.spec.spec;
  const listed = spec?.clusterIPs?.length ? spec.clusterIPs : spec?.clusterIP ? [spec.clusterIP] : [];
  if (listed.includes('None')) return [];
  return [...new Set(listed.filter((ip) => ip !== '').map(canonicalIP))];
}

function countByKind(resources: readonly Resource[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of resources) counts[r.kind] = (counts[r.kind] ?? 0) + 1;
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => (a < b ? -1 : 1)));
}

function serviceWarning(svc: Resource, text: string, field: string | undefined): ConfigMessage {
  return { ...objectWarning(svc, text), ...(field ? { field } : {}) };
}

function objectWarning(r: Resource, text: string): ConfigMessage {
  return {
    severity: 'warning',
    message: `${r.origin}: ${r.kind} ${r.namespace}/${r.name}: ${text}`,
    origin: r.origin,
    kind: r.kind,
    namespace: r.namespace,
    name: r.name,
  };
}

function list(items: ReadonlySet<string>): string {
  const all = [...items];
  return all.length > 5 ? `${all.slice(0, 5).join(', ')} and ${all.length - 5} more` : all.join(', ');
}
