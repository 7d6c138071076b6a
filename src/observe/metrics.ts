// Prometheus metrics through prom-client, served on 15020 /stats/prometheus. Istio's standard
// request metrics keep Istio's names and labels (reporter="waypoint") so existing dashboards work;
// the waypoint's own metrics are waypoint_<area>_<thing>. Every label is bounded: Service, principal
// and reason names, never paths or hosts from requests.
import client, { type Counter, type Histogram } from 'prom-client';
import { REASONS, type Reason } from '../pipeline/reasons.ts';

/** Reporter, source and destination: the labels every istio_* series starts with (peerValues). */
const PEER_LABELS = [
  'reporter',
  'source_workload_namespace',
  'source_principal',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'destination_principal',
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

export interface RequestLabels {
  sourceNamespace: string;
  sourcePrincipal: string;
  destinationService: string;
  destinationServiceName: string;
  destinationServiceNamespace: string;
  destinationPrincipal: string;
  protocol: 'http' | 'grpc';
  status: number;
  grpcStatus: string;
  reason: Reason;
  /** Envoy's response flags, `-` for none. */
  flags: string;
  /** The route rule that matched (`ns.name.rule`), for waypoint_requests_total; absent: default route. */
  route?: string | undefined;
}

export interface TcpLabels {
  sourceNamespace: string;
  sourcePrincipal: string;
  destinationService: string;
  destinationServiceName: string;
  destinationServiceNamespace: string;
  destinationPrincipal: string;
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
}

export class Metrics {
  readonly registry = new client.Registry();
  readonly #requests: Counter<(typeof ISTIO_LABELS)[number]>;
  readonly #duration: Histogram<(typeof ISTIO_LABELS)[number]>;
  readonly #reasons: Counter<'reason' | 'response_code' | 'response_flags' | 'route'>;
  readonly #tcpOpened: Counter<(typeof TCP_LABELS)[number]>;
  readonly #tcpClosed: Counter<(typeof TCP_LABELS)[number]>;
  readonly #tcpSent: Counter<(typeof TCP_LABELS)[number]>;
  readonly #tcpReceived: Counter<(typeof TCP_LABELS)[number]>;
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
  readonly configRejections: Counter;
  // Children cached by our own key, so each request looks up one Map entry instead of building
  // a label object; prom-client still hashes the labels on every inc/observe of a child.
  readonly #children = new Map<
    string,
    {
      requests: client.Counter.Internal;
      duration: client.Histogram.Internal<string>;
      reasons: client.Counter.Internal;
    }
  >();
  readonly #tcpChildren = new Map<
    string,
    Record<'opened' | 'closed' | 'sent' | 'received', client.Counter.Internal>
  >();

  constructor(gauges: Gauges, opts: { defaultMetrics?: boolean; version?: string } = {}) {
    const registers = [this.registry];
    if (opts.defaultMetrics !== false) client.collectDefaultMetrics({ register: this.registry });
    this.#requests = new client.Counter({
      name: 'istio_requests_total',
      help: 'Requests handled by the waypoint.',
      labelNames: ISTIO_LABELS,
      registers,
    });
    this.#duration = new client.Histogram({
      name: 'istio_request_duration_milliseconds',
      help: 'Request duration, from the first request byte to the last response byte.',
      labelNames: ISTIO_LABELS,
      buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000],
      registers,
    });
    this.#reasons = new client.Counter({
      name: 'waypoint_requests_total',
      help: 'Requests by response code, reason (the reason codes of src/pipeline/reasons.ts), response flags and route rule (ns.name.rule; empty for the default route).',
      labelNames: ['reason', 'response_code', 'response_flags', 'route'],
      registers,
    });
    const tcpCounter = (name: string, help: string) =>
      new client.Counter({ name, help, labelNames: TCP_LABELS, registers });
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

  request(l: RequestLabels, durationMs: number): void {
    const flags = l.flags;
    const key = `${l.sourcePrincipal}|${l.destinationService}|${l.destinationPrincipal}|${l.protocol}|${l.status}|${l.grpcStatus}|${l.reason}|${flags}|${l.route ?? ''}`;
    let c = this.#children.get(key);
    if (!c) {
      const values = [...peerValues(l), l.protocol, String(l.status), l.grpcStatus, flags, 'mutual_tls'];
      c = {
        requests: this.#requests.labels(...values),
        duration: this.#duration.labels(...values),
        reasons: this.#reasons.labels(l.reason, String(l.status), flags, l.route ?? ''),
      };
      this.#children.set(key, c);
    }
    c.requests.inc();
    c.duration.observe(durationMs);
    c.reasons.inc();
  }

  tcp(l: TcpLabels): Record<'opened' | 'closed' | 'sent' | 'received', client.Counter.Internal> {
    const key = `${l.sourcePrincipal}|${l.destinationService}|${l.destinationPrincipal}|${l.flags}`;
    let c = this.#tcpChildren.get(key);
    if (!c) {
      const values = [...peerValues(l), 'tcp', l.flags, 'mutual_tls'];
      c = {
        opened: this.#tcpOpened.labels(...values),
        closed: this.#tcpClosed.labels(...values),
        sent: this.#tcpSent.labels(...values),
        received: this.#tcpReceived.labels(...values),
      };
      this.#tcpChildren.set(key, c);
    }
    return c;
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
function peerValues(l: Omit<TcpLabels, 'flags'>): string[] {
  return [
    'waypoint',
    l.sourceNamespace,
    l.sourcePrincipal,
    l.destinationService,
    l.destinationServiceName,
    l.destinationServiceNamespace,
    l.destinationPrincipal,
  ];
}
