// Reporting one finished exchange, exactly once: the response flags, the filters' onComplete, the
// server span, Istio's metrics and the per-host counts, and the access-log line (whose record is
// built only when the line is written).
import type { IncomingHttpHeaders } from 'node:http';
import type { Endpoint, ServiceInfo } from '../../config/model.ts';
import { formatAuthority } from '../hbone/authority.ts';
import { type AccessLog, telemetryChoice } from '../observe/access-log.ts';
import type { Metrics } from '../observe/metrics.ts';
import { endSpan, type ServerTrace } from '../observe/tracing.ts';
import { auditHint } from '../pipeline/access-log-hint.ts';
import type { FilterChain } from '../pipeline/chain.ts';
import type { Outcome, RequestContext } from '../pipeline/context.ts';
import { noteFlag, responseFlags } from '../pipeline/response-flags.ts';
import { clusterName } from '../upstream/cluster.ts';
import { type RetryState, retryState } from '../upstream/retry.ts';

export interface Reporting {
  readonly metrics: Metrics;
  readonly accessLog: AccessLog;
}

/** What the exchange knows beyond its context and outcome. */
export interface FinishedExchange {
  readonly ctx: RequestContext;
  /** The request headers as the client sent them (x-forwarded-for, user-agent). */
  readonly clientHeaders: IncomingHttpHeaders;
  /** Wall-clock start, ms since the epoch (the access log's start_time). */
  readonly startMs: number;
  readonly upstreamEndpoint: Endpoint | undefined;
  readonly trace: ServerTrace | undefined;
}

export function reportExchange(
  r: Reporting,
  chain: FilterChain,
  x: FinishedExchange,
  outcome: Outcome,
): void {
  const ctx = x.ctx;
  const retries = retryState(ctx);
  if (retries?.exhausted) noteFlag(ctx, 'URX');
  if (retries?.overflow) noteFlag(ctx, 'UO');
  if (retries?.skipped) outcome = { ...outcome, detail: joinDetail(outcome.detail, retries.skipped) };
  const flags = responseFlags(ctx, outcome.reason);
  chain.onComplete(ctx, outcome);
  if (x.trace)
    endSpan(x.trace.span, {
      status: outcome.status,
      responseFlags: flags,
      upstreamCluster: ctx.target?.cluster.name,
      upstreamAddress: outcome.upstreamHost,
      requestSize: outcome.bytesReceived,
      responseSize: outcome.bytesSent,
    });
  const svc = reportedService(ctx);
  count(r.metrics, x, outcome, flags, svc);
  const audit = auditHint(ctx);
  const telemetry = telemetryChoice(ctx.snapshot, svc?.hostname);
  if (r.accessLog.wants(outcome.status, outcome.reason, audit !== undefined, telemetry))
    writeAccessLog(r.accessLog, x, outcome, flags, svc, audit, retries);
}

/** Istio reports the Service of the cluster the request went to (a routed backend), else the dialled one. */
function reportedService(ctx: RequestContext): ServiceInfo | undefined {
  const binding = ctx.tunnel.binding;
  return ctx.target?.cluster.service ?? (binding.kind === 'service' ? binding.service : undefined);
}

/** Istio's metrics and the per-host counts for one exchange. */
function count(
  metrics: Metrics,
  x: FinishedExchange,
  outcome: Outcome,
  flags: string,
  svc: ServiceInfo | undefined,
): void {
  const tunnel = x.ctx.tunnel;
  const binding = tunnel.binding;
  const series = metrics.requests.peers(
    tunnel.sourceWorkload ?? metrics.peers.sourceOf(tunnel),
    metrics.peers.destination(x.upstreamEndpoint, binding),
    metrics.requests.service(svc, binding.kind === 'workload' ? binding.pod.namespace : undefined),
  );
  series.request(outcome, flags, x.ctx.grpc, x.ctx.target?.routeName);
  metrics.hosts.request(outcome.upstreamHost, outcome.status);
}

function writeAccessLog(
  log: AccessLog,
  x: FinishedExchange,
  outcome: Outcome,
  flags: string,
  svc: ServiceInfo | undefined,
  audit: string | undefined,
  retries: RetryState | undefined,
): void {
  const ctx = x.ctx;
  const binding = ctx.tunnel.binding;
  log.write({
    start: new Date(x.startMs),
    method: ctx.method,
    // Envoy logs %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%: what the client sent.
    path: ctx.originalPath,
    protocol: ctx.protocol,
    status: outcome.status,
    reason: outcome.reason,
    flags,
    detail: outcome.detail,
    bytesReceived: outcome.bytesReceived,
    bytesSent: outcome.bytesSent,
    durationMs: outcome.durationMs,
    forwardedFor: x.clientHeaders['x-forwarded-for'] as string | undefined,
    userAgent: x.clientHeaders['user-agent'],
    requestId: ctx.id,
    authority: ctx.authority,
    upstreamHost: outcome.upstreamHost,
    upstreamCluster:
      ctx.target?.cluster.name ??
      (binding.kind === 'service' && svc
        ? clusterName(binding.port, undefined, svc.hostname, binding.protocol)
        : undefined),
    downstreamLocal: formatAuthority(ctx.tunnel.destination.ip, ctx.tunnel.destination.port),
    downstreamRemote: formatAuthority(ctx.tunnel.source.ip, ctx.tunnel.source.port),
    // Istio names the route of a Service without routes `default`.
    route: ctx.target ? (ctx.target.routeName ?? 'default') : undefined,
    audit,
    attempts: retries ? retries.retries + 1 : undefined,
  });
}

function joinDetail(a: string | undefined, b: string): string {
  return a ? `${a}; ${b}` : b;
}
