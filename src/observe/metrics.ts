// Prometheus metrics through prom-client, served on 15020 /stats/prometheus. Istio's standard
// request metrics keep Istio's names and labels (reporter="waypoint") so existing dashboards work;
// the waypoint's own metrics are waypoint_<area>_<thing>. Every label is bounded: Service, principal
// and reason names, never paths or hosts from requests.
import client, { type Counter } from 'prom-client';
import { REASONS, type Reason } from '../pipeline/reasons.ts';
import { HostStats } from './host-stats.ts';
import { PeerResolver } from './peers.ts';
import { type CounterChild, type HistogramChild, SeriesCounter, SeriesHistogram } from './series.ts';
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

/** Children found per label set are cached up to this many (the series themselves stay). */
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

export interface RequestLabels extends PeerLabels {
  protocol: 'http' | 'grpc';
  status: number;
  grpcStatus: string;
  reason: Reason;
  /** Envoy's response flags, `-` for none. */
  flags: string;
  /** The route rule that matched (`ns.name.rule`), for waypoint_requests_total; absent: default route. */
  route?: string | undefined;
}

export interface TcpLabels extends PeerLabels {
  flags: string;
}

/** Request and response body sizes, for istio_request_bytes and istio_response_bytes. */
export interface RequestSizes {
  requestBytes: number;
  responseBytes: number;
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
  // The per-request series: SeriesCounter/SeriesHistogram children are plain records (series.ts),
  // so counting does not hash labels the way prom-client's own children do.
  readonly #requests: SeriesCounter;
  readonly #duration: SeriesHistogram;
  readonly #requestBytes: SeriesHistogram;
  readonly #responseBytes: SeriesHistogram;
  readonly #reasons: SeriesCounter;
  readonly #tcpOpened: SeriesCounter;
  readonly #tcpClosed: SeriesCounter;
  readonly #tcpSent: SeriesCounter;
  readonly #tcpReceived: SeriesCounter;
  readonly #tunnelRejections: Counter<'reason'>;
  readonly #authzDecisions: Counter<'policy' | 'action' | 'decision'>;
  readonly #authzChildren = new Map<string, client.Counter.Internal>();
  readonly #rateLimitDecisions: Counter<'policy' | 'type' | 'result'>;
  readonly #rateLimitChildren = new Map<string, client.Counter.Internal>();
  /** Global rate-limit checks Redis could not answer, by what the request got (failure mode). */
  readonly rateLimitRedisFailures: Counter<'mode'>;
  /** Outlier detection ejections, by cluster and Envoy's ejection type (bounded: clusters come from the configuration). */
  readonly outlierEjections: Counter<'cluster' | 'type'>;
  /** Circuit-breaker overflows, by cluster and limit (requests, pending, retries). */
  readonly circuitBreakerOverflows: Counter<'cluster' | 'limit'>;
  readonly configReloads: Counter<'result'>;
  /** Connections, tunnels and requests refused past an overload limit, by limit. */
  readonly overloadRefusals: Counter<'limit'>;
  readonly configRejections: Counter;
  // Label sets repeat endlessly: a child is found once per distinct set (keyed by the interned
  // source/destination objects' ids, not by their label values).
  readonly #children = new Map<
    string,
    {
      requests: CounterChild;
      duration: HistogramChild;
      requestBytes: HistogramChild;
      responseBytes: HistogramChild;
      reasons: CounterChild;
    }
  >();
  readonly #tcpChildren = new Map<string, Record<'opened' | 'closed' | 'sent' | 'received', CounterChild>>();

  constructor(gauges: Gauges, opts: { defaultMetrics?: boolean; version?: string; clusterId?: string } = {}) {
    this.peers = new PeerResolver(opts.clusterId ?? 'Kubernetes');
    const registers = [this.registry];
    if (opts.defaultMetrics !== false) client.collectDefaultMetrics({ register: this.registry });
    const reg = this.registry;
    this.#requests = new SeriesCounter(
      'istio_requests_total',
      'Requests handled by the waypoint.',
      ISTIO_LABELS,
      reg,
    );
    this.#duration = new SeriesHistogram(
      'istio_request_duration_milliseconds',
      'Request duration, from the first request byte to the last response byte.',
      ISTIO_LABELS,
      ENVOY_BUCKETS,
      reg,
    );
    this.#requestBytes = new SeriesHistogram(
      'istio_request_bytes',
      'Request sizes (body bytes received from the client).',
      ISTIO_LABELS,
      ENVOY_BUCKETS,
      reg,
    );
    this.#responseBytes = new SeriesHistogram(
      'istio_response_bytes',
      'Response sizes (body bytes sent to the client).',
      ISTIO_LABELS,
      ENVOY_BUCKETS,
      reg,
    );
    this.#reasons = new SeriesCounter(
      'waypoint_requests_total',
      'Requests by response code, reason (the reason codes of src/pipeline/reasons.ts), response flags and route rule (ns.name.rule; empty for the default route).',
      ['reason', 'response_code', 'response_flags', 'route'],
      reg,
    );
    const tcpCounter = (name: string, help: string) => new SeriesCounter(name, help, TCP_LABELS, reg);
    this.#tcpOpened = tcpCounter('istio_tcp_connections_opened_total', 'TCP connections opened.');
    this.#tcpClosed = tcpCounter('istio_tcp_connections_closed_total', 'TCP connections closed.');
    this.#tcpSent = tcpCounter('istio_tcp_sent_bytes_total', 'Bytes sent to the client on TCP connections.');
    this.#tcpReceived = tcpCounter(
      'istio_tcp_received_bytes_total',
      'Bytes received from the client on TCP connections.',
    );
    this.#tunnelRejections = new client.Counter({
      name: 'waypoint_hbone_tunnels_rejected_total',
      help: 'CONNECT requests and connections refused on the HBONE port, by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.#authzDecisions = new client.Counter({
      name: 'waypoint_authz_decisions_total',
      help: 'AuthorizationPolicy decisions (HTTP requests and TCP connections), by deciding policy (NS/NAME or none), action and decision (allow, deny; dry-run: would_allow, would_deny; audit).',
      labelNames: ['policy', 'action', 'decision'],
      registers,
    });
    this.#rateLimitDecisions = new client.Counter({
      name: 'waypoint_rate_limit_decisions_total',
      help: 'Requests counted by a BackendTrafficPolicy rate-limit rule, by policy (NS/NAME), type (Local, Global) and result (ok, over_limit; failure_allowed / failure_denied when Redis could not answer).',
      labelNames: ['policy', 'type', 'result'],
      registers,
    });
    this.rateLimitRedisFailures = new client.Counter({
      name: 'waypoint_rate_limit_redis_failures_total',
      help: 'Global rate-limit checks that Redis could not answer (down, timed out, circuit open), by failure mode applied (open: allowed; closed: refused).',
      labelNames: ['mode'],
      registers,
    });
    for (const mode of ['open', 'closed']) this.rateLimitRedisFailures.labels(mode).inc(0);
    this.outlierEjections = new client.Counter({
      name: 'waypoint_outlier_ejections_total',
      help: 'Endpoints ejected by DestinationRule outlierDetection, by cluster and ejection type (consecutive_5xx, consecutive_gateway_failure, consecutive_local_origin_failure). Per replica.',
      labelNames: ['cluster', 'type'],
      registers,
    });
    this.circuitBreakerOverflows = new client.Counter({
      name: 'waypoint_circuit_breaker_overflows_total',
      help: 'Requests and retries refused by a DestinationRule connectionPool limit (503 UO), by cluster and limit. Per replica.',
      labelNames: ['cluster', 'limit'],
      registers,
    });
    this.overloadRefusals = new client.Counter({
      name: 'waypoint_overload_refusals_total',
      help: 'Refused past an overload limit, by limit (connections, tunnels, pending_requests, heap). Per replica.',
      labelNames: ['limit'],
      registers,
    });
    this.configReloads = new client.Counter({
      name: 'waypoint_config_reloads_total',
      help: 'Configuration loads, by result (applied: a new snapshot; unchanged; failed: nothing applied).',
      labelNames: ['result'],
      registers,
    });
    this.configRejections = new client.Counter({
      name: 'waypoint_config_resources_rejected_total',
      help: 'Resources rejected by validation (each keeps its last good version, if any).',
      registers,
    });
    const gauge = (name: string, help: string, read: () => number): void => {
      new client.Gauge({
        name,
        help,
        registers,
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
      registers,
    }).set({ version: opts.version ?? 'dev' }, 1);
    // Reason codes are a closed set: export them all at zero so rates work from the first scrape.
    for (const reason of Object.keys(REASONS) as Reason[])
      if (reason !== 'via_upstream')
        this.#reasons.labels(reason, String(REASONS[reason].status), REASONS[reason].flag, '').inc(0);
  }

  request(l: RequestLabels, durationMs: number, sizes: RequestSizes): void {
    const key = `${this.#peerKey(l)}|${l.protocol}|${l.status}|${l.grpcStatus}|${l.reason}|${l.flags}|${l.route ?? ''}`;
    let c = this.#children.get(key);
    if (!c) {
      const values = [...peerValues(l), l.protocol, String(l.status), l.grpcStatus, l.flags, 'mutual_tls'];
      c = {
        requests: this.#requests.labels(...values),
        duration: this.#duration.labels(...values),
        requestBytes: this.#requestBytes.labels(...values),
        responseBytes: this.#responseBytes.labels(...values),
        reasons: this.#reasons.labels(l.reason, String(l.status), l.flags, l.route ?? ''),
      };
      // A cache of the families' children: bounded, refilled on demand.
      if (this.#children.size >= MAX_CACHED) this.#children.clear();
      this.#children.set(key, c);
    }
    c.requests.inc();
    c.duration.observe(durationMs);
    c.requestBytes.observe(sizes.requestBytes);
    c.responseBytes.observe(sizes.responseBytes);
    c.reasons.inc();
  }

  tcp(l: TcpLabels): Record<'opened' | 'closed' | 'sent' | 'received', CounterChild> {
    const key = `${this.#peerKey(l)}|${l.flags}`;
    let c = this.#tcpChildren.get(key);
    if (!c) {
      const values = [...peerValues(l), 'tcp', l.flags, 'mutual_tls'];
      c = {
        opened: this.#tcpOpened.labels(...values),
        closed: this.#tcpClosed.labels(...values),
        sent: this.#tcpSent.labels(...values),
        received: this.#tcpReceived.labels(...values),
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

  /** One authorization outcome. Labels are policy names from the configuration: bounded. */
  authzDecision(policy: string, action: string, decision: string): void {
    const key = `${policy}|${action}|${decision}`;
    let c = this.#authzChildren.get(key);
    if (!c) {
      c = this.#authzDecisions.labels(policy, action, decision);
      this.#authzChildren.set(key, c);
    }
    c.inc();
  }

  /** One rate-limit rule's count of a request. Labels are policy names from the configuration: bounded. */
  rateLimitDecision(policy: string, type: string, result: string): void {
    const key = `${policy}|${type}|${result}`;
    let c = this.#rateLimitChildren.get(key);
    if (!c) {
      c = this.#rateLimitDecisions.labels(policy, type, result);
      this.#rateLimitChildren.set(key, c);
    }
    c.inc();
  }

  tunnelRejected(reason: Reason): void {
    this.#tunnelRejections.labels(reason).inc();
  }

  async render(): Promise<string> {
    return this.registry.metrics();
  }
}

/** The reporter, source and destination values every istio_* series starts with, in label order. */
function peerValues(l: PeerLabels): string[] {
  const s = l.source;
  const d = l.destination;
  return [
    'waypoint',
    s.workload,
    s.namespace,
    s.principal,
    s.app,
    s.version,
    s.canonicalService,
    s.canonicalRevision,
    s.cluster,
    d.workload,
    d.namespace,
    d.principal,
    d.app,
    d.version,
    l.destinationService,
    l.destinationServiceName,
    l.destinationServiceNamespace,
    d.canonicalService,
    d.canonicalRevision,
    d.cluster,
  ];
}
