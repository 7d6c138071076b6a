// Routing resources in force → RoutingConfig for the snapshot: per bound Service port, its
// default cluster, its route tables (producer and consumer) and TCP backends, plus route status.
// Gateway API routes win over a VirtualService for the same Service (both is undefined in Istio;
// we pick the one Istio recommends for ambient, deterministically, and warn).
import { buildInventory } from '../../config/compile/inventory.ts';
import type { FilterCompiler } from '../../config/compile.ts';
import type { GrpcRoute } from '../../config/kinds/grpc-route.ts';
import type { HttpRoute } from '../../config/kinds/http-route.ts';
import type { ReferenceGrant } from '../../config/kinds/reference-grant.ts';
import type { TcpRoute } from '../../config/kinds/tcp-route.ts';
import type { VirtualService } from '../../config/kinds/virtual-service.ts';
import type { ConfigMessage, Snapshot } from '../../config/model.ts';
import { type Resource, resourcesOf } from '../../config/resource.ts';
import type { Cluster } from '../../src/upstream/cluster.ts';
import {
  NO_RETRY,
  NO_TARGET_RETRY,
  NO_TIMEOUTS,
  type RetryPolicy,
  type UpstreamTarget,
} from '../../src/upstream/target.ts';
import { ClusterCatalog, type ServiceRecord } from './clusters.ts';
import {
  type BoundPort,
  compileGatewayRoutes,
  type HttpAttachment,
  type TcpAttachment,
} from './gateway-api.ts';
import {
  type HttpRouteTable,
  type PortRouting,
  portKey,
  type RouteEntry,
  type RouteStatus,
  type RoutingConfig,
  type TcpBackends,
} from './model.ts';
import { routeTable } from './route-index.ts';
import { routeOrder, sortEntries } from './sort.ts';
import { compileVsHttp, compileVsTcp, type VsContext, vsForMesh, vsSelects } from './virtual-service.ts';

const GATEWAY_API = 'gateway.networking.k8s.io';
const ISTIO_NETWORKING = 'networking.istio.io';

export const compileRouting: FilterCompiler = (resources, base) => {
  const messages: ConfigMessage[] = [];
  const config = buildRouting(resources, base, messages);
  return { config, messages: dedupe(messages) };
};

/** Gateway API attachments by port key; the first TCPRoute of a port wins. */
interface AttachmentsByPort {
  readonly http: ReadonlyMap<string, readonly HttpAttachment[]>;
  readonly tcp: ReadonlyMap<string, TcpBackends>;
}

function buildRouting(
  resources: readonly Resource[],
  base: Omit<Snapshot, 'filters'>,
  messages: ConfigMessage[],
): RoutingConfig {
  const { bound, clusterDomain } = boundPorts(base);
  const catalog = new ClusterCatalog(
    buildInventory(resources),
    resources,
    { trustDomain: base.trustDomain, clusterDomain, replicas: base.gateway.replicas },
    messages,
  );
  const scope: VsContext = { catalog, messages, waypointNamespace: base.gateway.ref.namespace };
  const gw = compileGatewayRoutes(gatewayRoutes(resources), {
    catalog,
    boundPorts: (ns, name) => bound.get(`${ns}/${name}`),
    grants: resourcesOf<ReferenceGrant>(resources, GATEWAY_API, 'ReferenceGrant'),
  });
  const virtualServices = byAge(
    resourcesOf<VirtualService>(resources, ISTIO_NETWORKING, 'VirtualService'),
  ).filter(vsForMesh);
  const attached = attachmentsByPort(gw);
  const ports = new Map<string, PortRouting>();
  for (const [svcKey, list] of bound) {
    const [namespace = '', name = ''] = svcKey.split('/');
    const svc = catalog.service(namespace, name);
    if (svc) serviceRouting(svc, list, virtualServices, attached, scope, ports);
  }
  statusWarnings(gw.statuses, resources, messages);
  return { ports, statuses: gw.statuses };
}

/** The ports of each bound Service (`ns/name`), and the cluster domain their hostnames use. */
function boundPorts(base: Omit<Snapshot, 'filters'>): {
  bound: Map<string, BoundPort[]>;
  clusterDomain: string;
} {
  const bound = new Map<string, BoundPort[]>();
  let clusterDomain = 'cluster.local';
  for (const b of base.services.values()) {
    const key = `${b.service.namespace}/${b.service.name}`;
    const list = bound.get(key) ?? [];
    if (!list.some((p) => p.port === b.port)) list.push({ port: b.port, protocol: b.protocol });
    bound.set(key, list);
    clusterDomain = b.service.hostname.split('.svc.')[1] ?? clusterDomain;
  }
  return { bound, clusterDomain };
}

/** Oldest first, then by namespace/name: the order Gateway API and Istio give conflicting routes. */
function byAge<T>(list: Resource<T>[]): Resource<T>[] {
  return list
    .map((r) => ({ r, created: created(r) }))
    .sort((a, b) => routeOrder({ ...a.r, created: a.created }, { ...b.r, created: b.created }))
    .map((x) => x.r);
}

function gatewayRoutes(resources: readonly Resource[]): Parameters<typeof compileGatewayRoutes>[0] {
  return byAge<unknown>([
    ...resourcesOf<HttpRoute>(resources, GATEWAY_API, 'HTTPRoute'),
    ...resourcesOf<GrpcRoute>(resources, GATEWAY_API, 'GRPCRoute'),
    ...resourcesOf<TcpRoute>(resources, GATEWAY_API, 'TCPRoute'),
  ] as Resource<unknown>[]).map((r) => ({ kind: r.kind, r }) as never);
}

function attachmentsByPort(gw: {
  http: readonly HttpAttachment[];
  tcp: readonly TcpAttachment[];
}): AttachmentsByPort {
  const http = new Map<string, HttpAttachment[]>();
  for (const a of gw.http) {
    const k = portKey(a.portKey.namespace, a.portKey.name, a.portKey.port);
    const list = http.get(k) ?? [];
    list.push(a);
    http.set(k, list);
  }
  const tcp = new Map<string, TcpBackends>();
  for (const a of gw.tcp) {
    const k = portKey(a.portKey.namespace, a.portKey.name, a.portKey.port);
    if (!tcp.has(k)) tcp.set(k, a.backends);
  }
  return { http, tcp };
}

/** Routing for each bound port of one Service: its Gateway API routes, else its VirtualService. */
function serviceRouting(
  svc: ServiceRecord,
  list: readonly BoundPort[],
  virtualServices: readonly Resource<VirtualService>[],
  attached: AttachmentsByPort,
  scope: VsContext,
  ports: Map<string, PortRouting>,
): void {
  const { namespace, name } = svc.info;
  const candidates = virtualServices.filter(
    (vs) =>
      (vs.namespace === namespace || vs.namespace === scope.waypointNamespace) &&
      vsSelects(vs, svc, scope.catalog),
  );
  const httpVs = candidates.find((vs) => (vs.spec.spec.http?.length ?? 0) > 0);
  const tcpVs = candidates.find((vs) => (vs.spec.spec.tcp?.length ?? 0) > 0);
  if (httpVs && list.some((p) => attached.http.has(portKey(namespace, name, p.port)))) {
    // Per Service; a port without Gateway API routes still uses the VirtualService.
    scope.messages.push(vsIgnored(httpVs, namespace, name));
  }
  for (const p of list) {
    const key = portKey(namespace, name, p.port);
    const own = scope.catalog.cluster(namespace, name, p.port);
    if (!own.ok) continue;
    const { producer, consumers } = httpTables(attached.http.get(key) ?? [], () =>
      httpVs && p.protocol !== 'tcp' && p.protocol !== 'tls'
        ? compileVsHttp(httpVs, svc, p.port, scope)
        : undefined,
    );
    const tcp =
      attached.tcp.get(key) ?? (tcpVs && !producer ? compileVsTcp(tcpVs, svc, p.port, scope) : undefined);
    ports.set(key, {
      defaultCluster: own.cluster,
      defaultTarget: defaultTarget(own.cluster, NO_TARGET_RETRY),
      defaultGrpcTarget: defaultTarget(own.cluster, NO_RETRY),
      producer,
      consumers,
      tcp,
    });
  }
}

/** A port's producer and consumer tables from its Gateway API routes; without any, its VirtualService's. */
function httpTables(
  attachments: readonly HttpAttachment[],
  vsTable: () => HttpRouteTable | undefined,
): { producer: HttpRouteTable | undefined; consumers: Map<string, HttpRouteTable> } {
  const consumers = new Map<string, HttpRouteTable>();
  if (attachments.length === 0) return { producer: vsTable(), consumers };
  const prod = attachments.filter((a) => a.consumer === undefined).flatMap((a) => a.entries);
  const producer = prod.length > 0 ? routeTable('Gateway API', sortEntries([...prod])) : undefined;
  const byNs = new Map<string, RouteEntry[]>();
  for (const a of attachments) {
    if (a.consumer === undefined) continue;
    byNs.set(a.consumer, [...(byNs.get(a.consumer) ?? []), ...a.entries]);
  }
  for (const [ns, entries] of byNs) consumers.set(ns, routeTable('Gateway API', sortEntries(entries)));
  return { producer, consumers };
}

function vsIgnored(vs: Resource<VirtualService>, namespace: string, name: string): ConfigMessage {
  return {
    severity: 'warning',
    message: `${vs.origin}: VirtualService ${vs.namespace}/${vs.name}: spec.http: Service ${namespace}/${name} also has HTTPRoute/GRPCRoute routes; the Gateway API routes are used and this VirtualService's http routes are ignored`,
    origin: vs.origin,
    kind: 'VirtualService',
    namespace: vs.namespace,
    name: vs.name,
    field: 'spec.http',
  };
}

/**
 * Conditions that say a route is not (fully) in force are warnings too, so `validate` and the log
 * show them without reading /config_dump.
 */
function statusWarnings(
  statuses: readonly RouteStatus[],
  resources: readonly Resource[],
  messages: ConfigMessage[],
): void {
  for (const st of statuses) {
    const r = resources.find((x) => x.kind === st.kind && x.namespace === st.namespace && x.name === st.name);
    for (const p of st.parents)
      for (const c of p.conditions) {
        if (c.status !== 'False') continue;
        messages.push({
          severity: 'warning',
          message: `${r?.origin ?? '-'}: ${st.kind} ${st.namespace}/${st.name}: parentRef ${p.parentRef.kind} ${p.parentRef.namespace}/${p.parentRef.name}: ${c.type} False (${c.reason}): ${c.message}`,
          ...(r ? { origin: r.origin } : {}),
          kind: st.kind,
          namespace: st.namespace,
          name: st.name,
        });
      }
  }
}

function defaultTarget(cluster: Cluster, retry: RetryPolicy): UpstreamTarget {
  return { cluster, timeouts: NO_TIMEOUTS, retry, mirrors: [], routeName: undefined };
}

function created(r: Resource): string {
  const meta = (r.spec as { metadata?: { creationTimestamp?: unknown } }).metadata;
  return typeof meta?.creationTimestamp === 'string' ? meta.creationTimestamp : '';
}

function dedupe(messages: ConfigMessage[]): ConfigMessage[] {
  const seen = new Set<string>();
  return messages.filter((m) => {
    if (seen.has(m.message)) return false;
    seen.add(m.message);
    return true;
  });
}
