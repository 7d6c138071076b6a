// The HTTP engine: one path for every request, whatever protocol it came in. Builds the request
// context, runs the snapshot's filter chain, sends upstream through the layers, streams the
// response back with backpressure, and reports the outcome (filters' onComplete, metrics, access
// log) exactly once. Every failure ends as the reason's local reply or a reset; none escapes.
import { randomUUID } from 'node:crypto';
import type { OutgoingHttpHeaders } from 'node:http';
import type { Endpoint, ServiceInfo, Snapshot } from '../../config/model.ts';
import { formatAuthority } from '../hbone/authority.ts';
import { type AccessLog, telemetryChoice } from '../observe/access-log.ts';
import type { Logger } from '../observe/logger.ts';
import type { Metrics } from '../observe/metrics.ts';
import { endSpan, SERVER_TRACE, serverTrace, type Tracing } from '../observe/tracing.ts';
import { auditHint } from '../pipeline/access-log-hint.ts';
import { FilterChain } from '../pipeline/chain.ts';
import type { Outcome, RequestContext, TunnelInfo } from '../pipeline/context.ts';
import type { FilterContext, FilterFactory, Verdict } from '../pipeline/filter.ts';
import { isProxyError, ProxyError } from '../pipeline/proxy-error.ts';
import { REASONS, type Reason, type ReasonInfo, UPSTREAM_RESET_REASONS } from '../pipeline/reasons.ts';
import { noteFlag, responseFlags } from '../pipeline/response-flags.ts';
import { clusterName } from '../upstream/cluster.ts';
import { retriedResetBody, retryState } from '../upstream/retry.ts';
import type { Send, UpstreamRequest } from '../upstream/types.ts';
import type { Downstream } from './downstream.ts';
import { downstreamResponseHeaders } from './headers.ts';
import { RequestBody } from './request-body.ts';
import { newRequestContext } from './request-context.ts';
import { type RequestTarget, requestTarget } from './request-target.ts';

export interface HttpEngineOptions {
  readonly factories: readonly FilterFactory[];
  /** What each factory gets when a snapshot's chain is built (the filters' counters). */
  readonly filterContext?: FilterContext;
  readonly send: Send;
  readonly metrics: Metrics;
  readonly accessLog: AccessLog;
  readonly log: Logger;
  /** `ip:port` of the HBONE listener, for the access log's downstream-local field. */
  readonly localAddress: () => string;
  /** Request tracing; absent or off: no span and no work per request. */
  readonly tracing?: Tracing;
}

export class HttpEngine {
  readonly #opts: HttpEngineOptions;
  // One chain per snapshot, built on first use; snapshots are immutable, so is the chain.
  readonly #chains = new WeakMap<Snapshot, FilterChain>();
  #inFlight = 0;
  #idleWaiters: Array<() => void> = [];

  constructor(opts: HttpEngineOptions) {
    this.#opts = opts;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Resolves when no request is in flight. */
  idle(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  chainFor(snapshot: Snapshot): FilterChain {
    let chain = this.#chains.get(snapshot);
    if (!chain) {
      chain = FilterChain.build(this.#opts.factories, snapshot, this.#opts.log, this.#opts.filterContext);
      this.#chains.set(snapshot, chain);
    }
    return chain;
  }

  /** Handles one exchange to completion. Never rejects. */
  async handle(ds: Downstream, liveTunnel: TunnelInfo): Promise<void> {
    // The tunnel's binding follows the configuration (a keep-alive tunnel outlives snapshots);
    // the request pins the pair it starts with, read together in this tick.
    const tunnel: TunnelInfo = {
      binding: liveTunnel.binding,
      snapshot: liveTunnel.snapshot,
      peer: liveTunnel.peer,
      source: liveTunnel.source,
      destination: liveTunnel.destination,
      sourceWorkload: liveTunnel.sourceWorkload,
    };
    this.#inFlight++;
    const startNs = process.hrtime.bigint();
    const start = new Date();
    const abort = new AbortController();
    const requestId = (ds.headers['x-request-id'] as string | undefined) ?? randomUUID();
    const target = requestTarget(ds.method, ds.path, ds.authority, ds.protocol !== 'HTTP/2');
    const origin = target.kind === 'origin' ? target : undefined;
    // Absolute-form: the URI's authority replaces Host (RFC 9112 §3.2.2), for filters and upstream alike.
    if (origin && origin.authority !== ds.authority) ds.headers.host = origin.authority;
    // Body bytes count once, when first read from the client: by a filter's readBody or by the
    // upstream (which sees the read bytes again, replayed).
    const reqBody = new RequestBody(ds.body);
    let counted = 0;
    let upstreamBytes = 0;
    const countTo = (total: number): void => {
      if (total <= counted) return;
      ds.received(total - counted);
      counted = total;
    };
    const ctx = newRequestContext({
      id: requestId,
      startNs,
      tunnel,
      method: ds.method,
      path: origin?.path ?? '/',
      authority: origin?.authority ?? ds.authority,
      protocol: ds.protocol,
      headers: ds.headers,
      signal: abort.signal,
      readBody: (maxBytes) =>
        reqBody.read(maxBytes).then(
          (prefix) => {
            countTo(prefix.bytes.length);
            return prefix;
          },
          (err: unknown) => {
            // The client's body failed: the request ends here as a downstream reset.
            abort.abort();
            ds.reset();
            throw err;
          },
        ),
    });
    const headers = ctx.headers as OutgoingHttpHeaders;
    const trace = this.#opts.tracing?.startServer(ds.method, ds.authority, ds.path, ds.headers, requestId);
    if (trace) ctx.attributes.set(SERVER_TRACE, trace);
    let reason: Reason = 'via_upstream';
    let detail: string | undefined;
    let upstreamHost: string | undefined;
    let upstreamEndpoint: Endpoint | undefined;
    let status = 0;
    let grpcStatus: string | undefined;
    let completed = false;
    ds.onClose((ok) => {
      completed = ok;
      if (!ok) abort.abort();
    });
    const chain = this.chainFor(tunnel.snapshot);

    const reply = (
      r: Reason,
      d: string | undefined,
      overrideStatus?: number,
      body?: string,
      extra?: OutgoingHttpHeaders,
    ): void => {
      reason = r;
      detail = d;
      const info: ReasonInfo = REASONS[r];
      status = overrideStatus ?? info.status;
      if (ctx.grpc) grpcStatus = undefined;
      // Filters see local replies' heads too, as Envoy's encoder filters do (CORS on a 403 or a redirect).
      const head = { status, headers: { ...info.headers, ...extra } };
      chain.onResponseHeaders(ctx, head);
      ds.localReply(status, body ?? info.body, { ...head.headers, 'x-waypoint-reason': r }, ctx.grpc);
    };

    try {
      // A request no upstream could be sent is answered before any filter runs or any body is read.
      const verdict = refusal(target, ds) ?? (await chain.onRequestHeaders(ctx));
      if (abort.signal.aborted) {
        reason = 'downstream_reset';
      } else if (verdict.kind === 'reply') {
        reply(verdict.reason, verdict.detail, verdict.status, verdict.body, verdict.headers);
      } else {
        const req: UpstreamRequest = {
          method: ds.method,
          path: ctx.path,
          headers: ctx.headers as OutgoingHttpHeaders,
          body: reqBody.upstream(),
          protocol: upstreamProtocol(ctx, ds),
          onBodyChunk: (chunk) => {
            upstreamBytes += chunk.length;
            countTo(upstreamBytes);
          },
        };
        if (req.protocol !== 'http2' && headers.host === undefined && ds.authority)
          headers.host = ds.authority;
        if (ds.upgrade) headers.upgrade = ds.upgrade;
        try {
          const res = await this.#opts.send(req, ctx);
          upstreamHost = res.upstreamHost;
          upstreamEndpoint = req.endpoint;
          if (abort.signal.aborted) {
            res.discard();
            reason = 'downstream_reset';
          } else {
            const head = { status: res.status, headers: downstreamResponseHeaders(res.headers) };
            chain.onResponseHeaders(ctx, head);
            status = head.status;
            ds.respond(head.status, head.headers, res.endStream === true);
            const grpcHeader = res.headers['grpc-status'];
            await res.stream({
              write: ds.sink.write,
              onDrain: ds.sink.onDrain,
              end: (trailers) => {
                grpcStatus =
                  (trailers?.['grpc-status'] as string | undefined) ?? (grpcHeader as string | undefined);
                ds.sink.end(trailers);
              },
              abort: ds.sink.abort,
            });
          }
        } catch (err) {
          const e = isProxyError(err)
            ? err
            : new ProxyError('internal_error', String(err), { side: 'internal', cause: err });
          upstreamHost ??= req.endpoint ? formatAuthority(req.endpoint.ip, req.endpoint.port) : undefined;
          upstreamEndpoint ??= req.endpoint;
          if (abort.signal.aborted) {
            reason = 'downstream_reset';
            detail = e.message;
          } else if (ds.headersSent) {
            // A timeout after the head keeps its own reason (UT); anything else is a reset (UR).
            reason =
              e.reason === 'upstream_request_timeout' || e.reason === 'stream_idle_timeout'
                ? e.reason
                : 'upstream_reset_after_response_started';
            detail = e.message;
            ds.reset();
          } else {
            const retried = (retryState(ctx)?.retries ?? 0) > 0;
            const body =
              retried && hasRetriedBody(e.reason) ? retriedResetBody(REASONS[e.reason].body) : undefined;
            // An error may name its own grpc-status (the client's grpc-timeout: DEADLINE_EXCEEDED).
            const extra =
              ctx.grpc && e.grpcStatus !== undefined ? { 'grpc-status': String(e.grpcStatus) } : undefined;
            reply(e.reason, e.message, undefined, body, extra);
          }
          if (e.reason === 'internal_error')
            this.#opts.log.error('request failed inside the waypoint', {
              request_id: requestId,
              error: e.message,
            });
        }
      }
    } catch (err) {
      // Only a bug gets here; the client still gets an answer.
      this.#opts.log.error('engine error', { request_id: requestId, error: String(err) });
      reason = 'internal_error';
      detail = String(err);
      try {
        if (!ds.headersSent) reply('internal_error', detail);
        else ds.reset();
      } catch {}
    }

    // Let the response finish (or fail) before reporting, so byte counts and status are final.
    if (!abort.signal.aborted && !completed) await new Promise<void>((r) => ds.onClose(() => r()));
    if (!completed && reason === 'via_upstream') reason = 'downstream_reset';
    this.#complete(
      ctx,
      ds,
      {
        status,
        reason,
        upstreamHost,
        bytesReceived: ds.bytesReceived,
        bytesSent: ds.bytesSent,
        durationMs: Number(process.hrtime.bigint() - startNs) / 1e6,
        grpcStatus,
        detail,
      },
      start,
      chain,
      upstreamEndpoint,
    );
  }

  #complete(
    ctx: RequestContext,
    ds: Downstream,
    outcome: Outcome,
    start: Date,
    chain: FilterChain,
    upstreamEndpoint: Endpoint | undefined,
  ): void {
    try {
      const retries = retryState(ctx);
      if (retries?.exhausted) noteFlag(ctx, 'URX');
      if (retries?.overflow) noteFlag(ctx, 'UO');
      if (retries?.skipped) outcome = { ...outcome, detail: joinDetail(outcome.detail, retries.skipped) };
      const flags = responseFlags(ctx, outcome.reason);
      chain.onComplete(ctx, outcome);
      const trace = serverTrace(ctx);
      if (trace)
        endSpan(trace.span, {
          status: outcome.status,
          responseFlags: flags,
          upstreamCluster: ctx.target?.cluster.name,
          upstreamAddress: outcome.upstreamHost,
          requestSize: outcome.bytesReceived,
          responseSize: outcome.bytesSent,
        });
      const binding = ctx.tunnel.binding;
      // Istio reports the Service of the cluster the request went to (a routed backend), else the dialled one.
      const svc = ctx.target?.cluster.service ?? (binding.kind === 'service' ? binding.service : undefined);
      this.#count(ctx, outcome, flags, svc, upstreamEndpoint);
      const audit = auditHint(ctx);
      const telemetry = telemetryChoice(ctx.snapshot, svc?.hostname);
      if (this.#opts.accessLog.wants(outcome.status, outcome.reason, audit !== undefined, telemetry)) {
        this.#opts.accessLog.write({
          start,
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
          forwardedFor: ds.headers['x-forwarded-for'] as string | undefined,
          userAgent: ds.headers['user-agent'] as string | undefined,
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
    } catch (err) {
      this.#opts.log.error('reporting a request failed', { request_id: ctx.id, error: String(err) });
    } finally {
      this.#inFlight--;
      if (this.#inFlight === 0) {
        const waiters = this.#idleWaiters;
        this.#idleWaiters = [];
        for (const w of waiters) w();
      }
    }
  }

  /** Istio's metrics and the per-host counts for one exchange. */
  #count(
    ctx: RequestContext,
    outcome: Outcome,
    flags: string,
    svc: ServiceInfo | undefined,
    upstreamEndpoint: Endpoint | undefined,
  ): void {
    const binding = ctx.tunnel.binding;
    const metrics = this.#opts.metrics;
    metrics.request(
      {
        source: ctx.tunnel.sourceWorkload ?? metrics.peers.sourceOf(ctx.tunnel),
        destination: metrics.peers.destination(upstreamEndpoint, binding),
        destinationService: svc?.hostname ?? 'unknown',
        destinationServiceName: svc?.name ?? 'unknown',
        destinationServiceNamespace:
          svc?.namespace ?? (binding.kind === 'workload' ? binding.pod.namespace : 'unknown'),
        protocol: ctx.grpc ? 'grpc' : 'http',
        status: outcome.status,
        grpcStatus: outcome.grpcStatus ?? '',
        reason: outcome.reason,
        flags,
        route: ctx.target?.routeName,
      },
      outcome.durationMs,
      { requestBytes: outcome.bytesReceived, responseBytes: outcome.bytesSent },
    );
    metrics.hosts.request(outcome.upstreamHost, outcome.status);
  }
}

/** What Envoy's codec and connection manager refuse outright; the HTTP/1 connection is closed after. */
function refusal(target: RequestTarget, ds: Downstream): Verdict | undefined {
  const close = ds.protocol === 'HTTP/2' ? undefined : { connection: 'close' };
  if (target.kind === 'reject')
    return {
      kind: 'reply',
      reason: target.reason,
      detail: target.detail,
      ...(close ? { headers: close } : {}),
    };
  if (ds.repeatedHost)
    return {
      kind: 'reply',
      reason: 'downstream_protocol_error',
      detail: 'more than one Host header',
      ...(close ? { headers: close } : {}),
    };
  return undefined;
}

/** Failures whose local-reply body Envoy rewrites to `retried and the latest reset reason: ...`. */
function hasRetriedBody(reason: Reason): boolean {
  return reason === 'upstream_connect_failure' || UPSTREAM_RESET_REASONS.has(reason);
}

function joinDetail(a: string | undefined, b: string): string {
  return a ? `${a}; ${b}` : b;
}

/**
 * The upstream HTTP version follows the port, as Istio sets up a waypoint's clusters
 * (setUpstreamProtocol: HTTP/2 for http2 and grpc ports, HTTP/1.1 for http ports whatever the
 * client spoke, so an h2c client reaches an HTTP/1.1 app). Only a port of unknown protocol, where
 * nothing says what the app speaks, follows the client (Envoy's use_downstream_protocol).
 */
function upstreamProtocol(ctx: RequestContext, ds: Downstream): 'http1' | 'http2' | 'upgrade' {
  if (ds.upgrade) return 'upgrade';
  const b = ctx.tunnel.binding;
  // A routed request speaks what its backend's port speaks.
  const protocol = ctx.target?.cluster.protocol ?? (b.kind === 'service' ? b.protocol : 'unknown');
  if (protocol === 'http2' || protocol === 'grpc') return 'http2';
  if (protocol === 'unknown' && ds.protocol === 'HTTP/2') return 'http2';
  return 'http1';
}
