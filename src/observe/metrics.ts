// Prometheus metrics through prom-client, served on 15020 /stats/prometheus. Istio's standard
// request metrics keep Istio's names and labels (reporter="waypoint") so existing dashboards work;
// the waypoint's own metrics are waypoint_<area>_<thing>. Every label is bounded: Service, principal
// and reason names, never paths or hosts from requests.
import client, { type Counter } from 'prom-client';
import { REASONS, type Reason } from '../pipeline/reasons.ts';
import { FilterCounters } from './filter-counters.ts';
import { HostStats } from './host-stats.ts';
import { PeerResolver } from './peers.ts';
import { peerValues, type RequestFamilies, RequestSeries } from './request-series.ts';
import { type CounterChild, SeriesCounter, SeriesHistogram } from './series.ts';
import type { WorkloadLabels } from './workload-labels.ts';

/**
 * Reporter, source and destination: the labels every istio_* series starts with (peerValues), as
 * Istio's waypoint reports them (tests/integration/ambient) and Kiali's graph groups by them.
 */
const PEER_LABELS = [
  'reporter',
  'source_workload',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_canonical_service',
  'source_canonical_revision',
  'source_cluster',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_cluster',
] as const;

const ISTIO_LABELS = [
  ...PEER_LABELS,
  'request_protocol',
  'response_code',
  'grpc_response_status',
  'response_flags',
  'connection_security_policy',
] as const;

const TCP_LABELS = [
  ...PEER_LABELS,
  'request_protocol',
  'response_flags',
  'connection_security_policy',
] as const;

/** TCP children found per label set are cached up to this many (the series themselves stay). */
const MAX_CACHED = 16384;

/** Envoy's default histogram buckets, so waypoint series aggregate with Envoy's (ms for durations, bytes for sizes). */
export const ENVOY_BUCKETS = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000,
  3600000,
];

/** Who sent and who received, resolved once per workload (workload-labels.ts), and the Service. */
export interface PeerLabels {
  source: WorkloadLabels;
  destination: WorkloadLabels;
  destinationService: string;
  destinationServiceName: string;
  destinationServiceNamespace: string;
}

export interface TcpLabels extends PeerLabels {
  flags: string;
}

export interface Gauges {
  hboneSessions(): number;
  hboneTunnels(): number;
  upstreamHttp1Connections(): number;
  upstreamHttp2Connections(): number;
  upstreamHboneSessions(): number;
  draining(): boolean;
  configVersion(): number;
  /** 1 while the heap sheds new tunnels and requests (src/lifecycle/overload.ts). */
  overloadHeapShedding?(): number;
  upstreamPendingRequests?(): number;
}

export class Metrics {
  readonly registry = new client.Registry();
  /** Source and destination labels, resolved once per workload. */
  readonly peers: PeerResolver;
  /** Per-endpoint request and connection counts, for the admin's /clusters. */
  readonly hosts = new HostStats();
  /**
   * Istio's request series and waypoint_requests_total: a request finds its children by the
   * identities of its (interned) peer labels, then its route and a number packed from its response
   * (request-series.ts), so counting builds no key and hashes no labels.
   */
  readonly requests: RequestSeries;
  readonly #tcp: Record<TcpFamily, SeriesCounter>;
  readonly #tunnelRejections: Counter<'reason'>;
  /** The counters filters declare (authz decisions, rate-limit results …): the engine names none. */
  readonly filterCounters: FilterCounters;
  /** Outlier detection ejections, by cluster and Envoy's ejection type (bounded: clusters come from the configuration). */
  readonly outlierEjections: Counter<'cluster' | 'type'>;
  /** Circuit-breaker overflows, by cluster and limit (requests, pending, retries). */
  readonly circuitBreakerOverflows: Counter<'cluster' | 'limit'>;
  readonly configReloads: Counter<'result'>;
  /** Connections, tunnels and requests refused past an overload limit, by limit. */
  readonly overloadRefusals: Counter<'limit'>;
  readonly configRejections: Counter;
  // TCP label sets repeat for every connection between the same peers: a child set is found once per
  // distinct set (keyed by the interned source/destination objects' ids, not by their label values).
  readonly #tcpChildren = new Map<string, Record<TcpFamily, CounterChild>>();

  constructor(gauges: Gauges, opts: { defaultMetrics?: boolean; version?: string; clusterId?: string } = {}) {
    this.peers = new PeerResolver(opts.clusterId ?? 'Kubernetes');
    const reg = this.registry;
    if (opts.defaultMetrics !== false) client.collectDefaultMetrics({ register: reg });
    this.requests = new RequestSeries(requestFamilies(reg));
    this.#tcp = tcpFamilies(reg);
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
      new client.Counter<L>({ name, help, labelNames, registers: [reg] });
    this.#tunnelRejections = counter(
      'waypoint_hbone_tunnels_rejected_total',
      'CONNECT requests and connections refused on the HBONE port, by reason.',
      ['reason'],
    );
    this.filterCounters = new FilterCounters(reg);
    this.outlierEjections = counter(
      'waypoint_outlier_ejections_total',
      'Endpoints ejected by DestinationRule outlierDetection, by cluster and ejection type (consecutive_5xx, consecutive_gateway_failure, consecutive_local_origin_failure). Per replica.',
      ['cluster', 'type'],
    );
    this.circuitBreakerOverflows = counter(
      'waypoint_circuit_breaker_overflows_total',
      'Requests and retries refused by a DestinationRule connectionPool limit (503 UO), by cluster and limit. Per replica.',
      ['cluster', 'limit'],
    );
    this.overloadRefusals = counter(
      'waypoint_overload_refusals_total',
      'Refused past an overload limit, by limit (connections, tunnels, pending_requests, heap). Per replica.',
      ['limit'],
    );
    this.configReloads = counter(
      'waypoint_config_reloads_total',
      'Configuration loads, by result (applied: a new snapshot; unchanged; failed: nothing applied).',
      ['result'],
    );
    this.configRejections = counter(
      'waypoint_config_resources_rejected_total',
      'Resources rejected by validation (each keeps its last good version, if any).',
      [],
    );
    registerGauges(reg, gauges, opts.version ?? 'dev');
  }

  tcp(l: TcpLabels): Record<TcpFamily, CounterChild> {
    const key = `${this.#peerKey(l)}|${l.flags}`;
    let c = this.#tcpChildren.get(key);
    if (!c) {
      const values = [...peerValues(l.source, l.destination, l), 'tcp', l.flags, 'mutual_tls'];
      c = {
        opened: this.#tcp.opened.labels(...values),
        closed: this.#tcp.closed.labels(...values),
        sent: this.#tcp.sent.labels(...values),
        received: this.#tcp.received.labels(...values),
      };
      if (this.#tcpChildren.size >= MAX_CACHED) this.#tcpChildren.clear();
      this.#tcpChildren.set(key, c);
    }
    return c;
  }

  /** Source and destination are shared frozen objects: their identity stands for their values. */
  #peerKey(l: PeerLabels): string {
    return `${this.#idOf(l.source)}|${this.#idOf(l.destination)}|${l.destinationService}|${l.destinationServiceName}|${l.destinationServiceNamespace}`;
  }

  readonly #ids = new WeakMap<object, number>();
  #nextId = 0;

  #idOf(o: object): number {
    let id = this.#ids.get(o);
    if (id === undefined) {
      id = ++this.#nextId;
      this.#ids.set(o, id);
    }
    return id;
  }

  tunnelRejected(reason: Reason): void {
    this.#tunnelRejections.labels(reason).inc();
  }

  async render(): Promise<string> {
    return this.registry.metrics();
  }
}

type TcpFamily = 'opened' | 'closed' | 'sent' | 'received';

/** The istio_* request families and waypoint_requests_total, every reason code exported at zero. */
function requestFamilies(reg: client.Registry): RequestFamilies {
  const histogram = (name: string, help: string) =>
    new SeriesHistogram(name, help, ISTIO_LABELS, ENVOY_BUCKETS, reg);
  const families: RequestFamilies = {
    requests: new SeriesCounter(
      'istio_requests_total',
      'Requests handled by the waypoint.',
      ISTIO_LABELS,
      reg,
    ),
    duration: histogram(
      'istio_request_duration_milliseconds',
      'Request duration, from the first request byte to the last response byte.',
    ),
    requestBytes: histogram('istio_request_bytes', 'Request sizes (body bytes received from the client).'),
    responseBytes: histogram('istio_response_bytes', 'Response sizes (body bytes sent to the client).'),
    reasons: new SeriesCounter(
      'waypoint_requests_total',
      'Requests by response code, reason (the reason codes of src/pipeline/reasons.ts), response flags and route rule (ns.name.rule; empty for the default route).',
      ['reason', 'response_code', 'response_flags', 'route'],
      reg,
    ),
  };
  // Reason codes are a closed set: export them all at zero so rates work from the first scrape.
  for (const reason of Object.keys(REASONS) as Reason[])
    if (reason !== 'via_upstream')
      families.reasons.labels(reason, String(REASONS[reason].status), REASONS[reason].flag, '').inc(0);
  return families;
}

function tcpFamilies(reg: client.Registry): Record<TcpFamily, SeriesCounter> {
  const tcpCounter = (name: string, help: string) => new SeriesCounter(name, help, TCP_LABELS, reg);
  return {
    opened: tcpCounter('istio_tcp_connections_opened_total', 'TCP connections opened.'),
    closed: tcpCounter('istio_tcp_connections_closed_total', 'TCP connections closed.'),
    sent: tcpCounter('istio_tcp_sent_bytes_total', 'Bytes sent to the client on TCP connections.'),
    received: tcpCounter(
      'istio_tcp_received_bytes_total',
      'Bytes received from the client on TCP connections.',
    ),
  };
}

/** The gauges read at scrape time, and the build info. */
function registerGauges(reg: client.Registry, gauges: Gauges, version: string): void {
  const gauge = (name: string, help: string, read: () => number): void => {
    new client.Gauge({
      name,
      help,
      registers: [reg],
      collect() {
        this.set(read());
      },
    });
  };
  gauge(
    'waypoint_hbone_sessions_active',
    'Inbound HBONE (HTTP/2 over mTLS) connections.',
    gauges.hboneSessions,
  );
  gauge('waypoint_hbone_tunnels_active', 'Inbound CONNECT tunnels being served.', gauges.hboneTunnels);
  gauge(
    'waypoint_upstream_hbone_sessions_active',
    'Outbound HBONE connections to endpoints.',
    gauges.upstreamHboneSessions,
  );
  gauge(
    'waypoint_upstream_http1_connections_active',
    'Inner HTTP/1.1 connections to endpoints (one tunnel each).',
    gauges.upstreamHttp1Connections,
  );
  gauge(
    'waypoint_upstream_http2_connections_active',
    'Inner HTTP/2 connections to endpoints (one tunnel each).',
    gauges.upstreamHttp2Connections,
  );
  gauge('waypoint_draining', '1 while the waypoint drains before exit.', () => (gauges.draining() ? 1 : 0));
  if (gauges.overloadHeapShedding)
    gauge(
      'waypoint_overload_heap_shedding',
      '1 while heap use is above the high-water mark: new tunnels and requests get 503.',
      gauges.overloadHeapShedding,
    );
  if (gauges.upstreamPendingRequests)
    gauge(
      'waypoint_upstream_pending_requests',
      'Requests waiting on upstream response headers.',
      gauges.upstreamPendingRequests,
    );
  gauge('waypoint_config_version', 'Version of the configuration snapshot in force.', gauges.configVersion);
  new client.Gauge({
    name: 'waypoint_build_info',
    help: 'Build of this waypoint.',
    labelNames: ['version'],
    registers: [reg],
  }).set({ version }, 1);
}
