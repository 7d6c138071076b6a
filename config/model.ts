// The compiled configuration: what the data path reads. A Snapshot is built once from the Kubernetes
// resources in force, deep-frozen, and swapped atomically; a request keeps the snapshot it started with.

import type { AccessLogging } from './compile/access-logging.ts';

/** Which traffic a waypoint takes (`istio.io/waypoint-for` on the Gateway, else its GatewayClass). */
export type TrafficType = 'service' | 'workload' | 'all' | 'none';

/**
 * How the waypoint treats the bytes of a port (Istio's ConvertProtocol on appProtocol, else the port
 * name's prefix). `unknown` means sniff.
 */
export type AppProtocol = 'http' | 'http2' | 'grpc' | 'tcp' | 'tls' | 'unknown';

export interface ObjectRef {
  readonly namespace: string;
  readonly name: string;
}

/** Where a resource came from, for messages: `file.yaml` or `file.yaml#3` (document index, 1-based). */
export type Origin = string;

export interface PodInfo extends ObjectRef {
  readonly labels: Readonly<Record<string, string>>;
  readonly serviceAccount: string;
  /** The workload name metrics report: the controlling Deployment, CronJob, ... as Istio derives it. */
  readonly workload: string;
}

export interface Endpoint {
  /** Pod IP. */
  readonly ip: string;
  /** The port on the pod (the Service port's targetPort, resolved). */
  readonly port: number;
  /** The SPIFFE URI the endpoint's HBONE peer must present (its pod's service account). */
  readonly identity: string;
  /** EndpointSlice conditions (ready = serving and not terminating). */
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  readonly pod?: PodInfo;
  /**
   * How the waypoint reaches it: `hbone` (default) tunnels to ip:15008 and checks `identity`;
   * `plain` is a direct TCP connection to ip:port without identity (MESH_EXTERNAL ServiceEntry
   * endpoints: egress, as Istio's waypoint does it).
   */
  readonly transport?: 'hbone' | 'plain';
}

export interface ServiceInfo extends ObjectRef {
  /** FQDN: name.namespace.svc.CLUSTER_DOMAIN. */
  readonly hostname: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** One Service port bound to this waypoint, keyed by `VIP:port`. */
export interface ServicePortBinding {
  readonly kind: 'service';
  /** `10.96.0.5:8080` ([v6]:port for IPv6). Every ClusterIP of the Service gets an entry. */
  readonly key: string;
  readonly service: ServiceInfo;
  readonly port: number;
  readonly portName: string | undefined;
  readonly protocol: AppProtocol;
  /** Every endpoint of the port, ready or not; selection filters by condition. */
  readonly endpoints: readonly Endpoint[];
}

/** A pod bound to this waypoint for workload-addressed traffic, keyed by pod IP. */
export interface WorkloadBinding {
  readonly kind: 'workload';
  readonly ip: string;
  readonly pod: PodInfo;
  readonly identity: string;
  readonly ready: boolean;
}

export interface ConfigMessage {
  readonly severity: 'error' | 'warning';
  /** file, kind, namespace/name and field, in words: `demo.yaml#2: Service bank/frontend: spec.ports[0].port: ...`. */
  readonly message: string;
  readonly origin?: Origin;
  readonly kind?: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly field?: string;
}

export interface GatewayStatus {
  readonly ref: ObjectRef;
  /** False until a Gateway of that name is in the configuration. */
  readonly found: boolean;
  readonly gatewayClassName: string | undefined;
  readonly trafficType: TrafficType;
  /** Why it does or does not serve traffic, in words (for /config_dump and logs). */
  readonly conditions: readonly string[];
  /**
   * Live replicas of this waypoint: its Ready, non-terminal Pods (labelled with the Gateway's name)
   * in the configuration; 1 when none is found. Limits with scope Waypoint are divided by it.
   */
  readonly replicas: number;
  /** False when no Ready waypoint Pod is in the configuration and `replicas` is the fallback 1. */
  readonly replicasKnown: boolean;
}

export interface Snapshot {
  /** Increases with every applied configuration. */
  readonly version: number;
  readonly createdAt: string;
  readonly trustDomain: string;
  readonly gateway: GatewayStatus;
  readonly services: ReadonlyMap<string, ServicePortBinding>;
  readonly workloads: ReadonlyMap<string, WorkloadBinding>;
  /** Every running pod by IP, bound to this waypoint or not: the source of a tunnel, for metrics. */
  readonly pods: ReadonlyMap<string, PodInfo>;
  /** The Telemetry API's accessLogging for this waypoint (absent: no Telemetry says; --access-log decides). */
  readonly accessLogging?: AccessLogging;
  /** Count of resources in force, by kind. */
  readonly resourceCounts: Readonly<Record<string, number>>;
  /** Warnings and errors of the resources in force (rejected resources are listed in `rejected`). */
  readonly messages: readonly ConfigMessage[];
  /** Per-filter compiled configuration, by filter name (filled by later filters). */
  readonly filters: Readonly<Record<string, unknown>>;
}

export interface CompileOptions {
  readonly gateway: ObjectRef;
  readonly trustDomain: string;
  /** Kubernetes cluster domain for Service FQDNs (default cluster.local). */
  readonly clusterDomain: string;
}
