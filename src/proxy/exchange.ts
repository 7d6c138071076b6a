// One request through the HTTP engine, as a single object rather than a closure per step: the
// request phase (refusal or the filters' verdict, then upstream), the response streamed into the
// client with the exchange itself as the sink, and the report once both the request phase and the
// client side are over. Every failure ends as the reason's local reply or a reset; none escapes.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Endpoint } from '../../config/model.ts';
import { formatAuthority } from '../hbone/authority.ts';
import type { Logger } from '../observe/logger.ts';
import { SERVER_TRACE, type ServerTrace, type Tracing } from '../observe/tracing.ts';
import type { FilterChain } from '../pipeline/chain.ts';
import type { BodyPrefix, RequestContext, TunnelInfo } from '../pipeline/context.ts';
import type { Verdict } from '../pipeline/filter.ts';
import { isProxyError, ProxyError } from '../pipeline/proxy-error.ts';
import { REASONS, type Reason, type ReasonInfo, UPSTREAM_RESET_REASONS } from '../pipeline/reasons.ts';
import { retriedResetBody, retryState } from '../upstream/retry.ts';
import type { ResponseSink, Send, UpstreamRequest, UpstreamResponse } from '../upstream/types.ts';
import type { Downstream } from './downstream.ts';
import { type FinishedExchange, type Reporting, reportExchange } from './exchange-report.ts';
import { downstreamResponseHeaders } from './headers.ts';
import { RequestBody } from './request-body.ts';
import { newRequestContext } from './request-context.ts';
import { newRequestId } from './request-id.ts';
import { type RequestTarget, requestTarget } from './request-target.ts';

/** What an exchange needs from its engine. */
export interface ExchangeDeps extends Reporting {
  readonly send: Send;
  readonly log: Logger;
  readonly tracing?: Tracing | undefined;
}

export class Exchange implements ResponseSink, FinishedExchange {
  readonly ctx: RequestContext;
  readonly startMs = Date.now();
  readonly trace: ServerTrace | undefined;
  upstreamEndpoint: Endpoint | undefined;
  readonly #deps: ExchangeDeps;
  readonly #chain: FilterChain;
  readonly #ds: Downstream;
  readonly #done: () => void;
  readonly #target: RequestTarget;
  readonly #abort = new AbortController();
  readonly #body: RequestBody;
  /** Request-body bytes counted into the downstream's total, and those the upstream consumed. */
  #counted = 0;
  #upstreamBytes = 0;
  #reason: Reason = 'via_upstream';
  #detail: string | undefined;
  #status = 0;
  #grpcStatus: string | undefined;
  #grpcHeader: string | undefined;
  #upstreamHost: string | undefined;
  #closed = false;
  #completed = false;
  #requestDone = false;
  #reported = false;

  /** `tunnel`: pinned for this request (see pinTunnel). `done`: called once, after the report. */
  constructor(deps: ExchangeDeps, chain: FilterChain, ds: Downstream, tunnel: TunnelInfo, done: () => void) {
    this.#deps = deps;
    this.#chain = chain;
    this.#ds = ds;
    this.#done = done;
    const startNs = process.hrtime.bigint();
    const id = (ds.headers['x-request-id'] as string | undefined) ?? newRequestId();
    const target = requestTarget(ds.method, ds.path, ds.authority, ds.protocol !== 'HTTP/2');
    this.#target = target;
    const origin = target.kind === 'origin' ? target : undefined;
    // Absolute-form: the URI's authority replaces Host (RFC 9112 §3.2.2), for filters and upstream alike.
    if (origin && origin.authority !== ds.authority) ds.headers.host = origin.authority;
    this.#body = new RequestBody(ds.body);
    this.ctx = newRequestContext({
      id,
      startNs,
      tunnel,
      method: ds.method,
      path: origin?.path ?? '/',
      authority: origin?.authority ?? ds.authority,
      protocol: ds.protocol,
      headers: ds.headers,
      signal: this.#abort.signal,
      // No body: the context's shared empty reader, no closure.
      readBody: ds.body ? (maxBytes) => this.#readBody(maxBytes) : undefined,
    });
    this.trace = deps.tracing?.startServer(ds.method, ds.authority, ds.path, ds.headers, id);
    if (this.trace) this.ctx.attributes.set(SERVER_TRACE, this.trace);
    ds.onClose((ok) => this.#onClose(ok));
  }

  get clientHeaders(): IncomingHttpHeaders {
    return this.#ds.headers;
  }

  /** The request phase. Never rejects. */
  async run(): Promise<void> {
    let req: UpstreamRequest | undefined;
    try {
      // A request no upstream could be sent is answered before any filter runs or any body is read.
      const pending = refusal(this.#target, this.#ds) ?? this.#chain.onRequestHeaders(this.ctx);
      const verdict = pending instanceof Promise ? await pending : pending;
      if (this.#abort.signal.aborted) this.#reason = 'downstream_reset';
      else if (verdict.kind === 'reply')
        this.#reply(verdict.reason, verdict.detail, verdict.status, verdict.body, verdict.headers);
      else {
        const r = this.#upstreamRequest();
        req = r;
        const res = await this.#deps.send(r, this.ctx);
        if (this.#respond(res, r)) await res.stream(this);
      }
    } catch (err) {
      this.#failed(err, req);
    }
    this.#requestDone = true;
    // Let the response finish (or fail) before reporting, so byte counts and status are final.
    if (this.#abort.signal.aborted || this.#closed) this.#finish();
  }

  /** Body bytes count once, when first read from the client: by a filter's readBody or by the upstream. */
  #countTo(total: number): void {
    if (total <= this.#counted) return;
    this.#ds.received(total - this.#counted);
    this.#counted = total;
  }

  #readBody(maxBytes: number): Promise<BodyPrefix> {
    return this.#body.read(maxBytes).then(
      (prefix) => {
        this.#countTo(prefix.bytes.length);
        return prefix;
      },
      (err: unknown) => {
        // The client's body failed: the request ends here as a downstream reset.
        this.#abort.abort();
        this.#ds.reset();
        throw err;
      },
    );
  }

  #upstreamRequest(): UpstreamRequest {
    const ds = this.#ds;
    const headers = this.ctx.headers as OutgoingHttpHeaders;
    const req: UpstreamRequest = {
      method: ds.method,
      path: this.ctx.path,
      headers,
      body: this.#body.upstream(),
      protocol: upstreamProtocol(this.ctx, ds),
      onBodyChunk: (chunk) => {
        this.#upstreamBytes += chunk.length;
        this.#countTo(this.#upstreamBytes);
      },
    };
    if (req.protocol !== 'http2' && headers.host === undefined && ds.authority) headers.host = ds.authority;
    if (ds.upgrade) headers.upgrade = ds.upgrade;
    return req;
  }

  /** Sends the upstream's head downstream through the filters; false: the client is gone. */
  #respond(res: UpstreamResponse, req: UpstreamRequest): boolean {
    this.#upstreamHost = res.upstreamHost;
    this.upstreamEndpoint = req.endpoint;
    if (this.#abort.signal.aborted) {
      res.discard();
      this.#reason = 'downstream_reset';
      return false;
    }
    const head = { status: res.status, headers: downstreamResponseHeaders(res.headers) };
    this.#chain.onResponseHeaders(this.ctx, head);
    this.#status = head.status;
    this.#ds.respond(head.status, head.headers, res.endStream === true);
    this.#grpcHeader = res.headers['grpc-status'] as string | undefined;
    return true;
  }

  // The response body's sink: the client's, recording the gRPC status the trailers (or head) carry.
  write(chunk: Buffer): boolean {
    return this.#ds.sink.write(chunk);
  }

  onDrain(resume: () => void): void {
    this.#ds.sink.onDrain(resume);
  }

  end(trailers: IncomingHttpHeaders | undefined): void {
    this.#grpcStatus = (trailers?.['grpc-status'] as string | undefined) ?? this.#grpcHeader;
    this.#ds.sink.end(trailers);
  }

  abort(err: Error): void {
    this.#ds.sink.abort(err);
  }

  #reply(
    r: Reason,
    d: string | undefined,
    status?: number,
    body?: string,
    extra?: OutgoingHttpHeaders,
  ): void {
    this.#reason = r;
    this.#detail = d;
    const info: ReasonInfo = REASONS[r];
    this.#status = status ?? info.status;
    if (this.ctx.grpc) this.#grpcStatus = undefined;
    // Filters see local replies' heads too, as Envoy's encoder filters do (CORS on a 403 or a redirect).
    const head = { status: this.#status, headers: { ...info.headers, ...extra } };
    this.#chain.onResponseHeaders(this.ctx, head);
    this.#ds.localReply(
      this.#status,
      body ?? info.body,
      { ...head.headers, 'x-waypoint-reason': r },
      this.ctx.grpc,
    );
  }

  /** A failure of the request phase: the upstream's (req set), else a bug in the waypoint. */
  #failed(err: unknown, req: UpstreamRequest | undefined): void {
    if (req) {
      try {
        this.#upstreamFailed(isProxyError(err) ? err : internal(err), req);
        return;
      } catch (bug) {
        err = bug;
      }
    }
    // Only a bug gets here; the client still gets an answer.
    this.#deps.log.error('engine error', { request_id: this.ctx.id, error: String(err) });
    this.#reason = 'internal_error';
    this.#detail = String(err);
    try {
      if (!this.#ds.headersSent) this.#reply('internal_error', this.#detail);
      else this.#ds.reset();
    } catch {}
  }

  #upstreamFailed(e: ProxyError, req: UpstreamRequest): void {
    this.#upstreamHost ??= req.endpoint ? formatAuthority(req.endpoint.ip, req.endpoint.port) : undefined;
    this.upstreamEndpoint ??= req.endpoint;
    if (this.#abort.signal.aborted) {
      this.#reason = 'downstream_reset';
      this.#detail = e.message;
    } else if (this.#ds.headersSent) {
      // A timeout after the head keeps its own reason (UT); anything else is a reset (UR).
      this.#reason =
        e.reason === 'upstream_request_timeout' || e.reason === 'stream_idle_timeout'
          ? e.reason
          : 'upstream_reset_after_response_started';
      this.#detail = e.message;
      this.#ds.reset();
    } else {
      const retried = (retryState(this.ctx)?.retries ?? 0) > 0;
      const body = retried && hasRetriedBody(e.reason) ? retriedResetBody(REASONS[e.reason].body) : undefined;
      // An error may name its own grpc-status (the client's grpc-timeout: DEADLINE_EXCEEDED).
      const extra =
        this.ctx.grpc && e.grpcStatus !== undefined ? { 'grpc-status': String(e.grpcStatus) } : undefined;
      this.#reply(e.reason, e.message, undefined, body, extra);
    }
    if (e.reason === 'internal_error')
      this.#deps.log.error('request failed inside the waypoint', {
        request_id: this.ctx.id,
        error: e.message,
      });
  }

  #onClose(ok: boolean): void {
    this.#closed = true;
    this.#completed = ok;
    if (!ok) this.#abort.abort();
    if (this.#requestDone) this.#finish();
  }

  /** Reports the exchange once, when the request phase is over and the client side too. */
  #finish(): void {
    if (this.#reported) return;
    this.#reported = true;
    if (!this.#completed && this.#reason === 'via_upstream') this.#reason = 'downstream_reset';
    try {
      reportExchange(this.#deps, this.#chain, this, {
        status: this.#status,
        reason: this.#reason,
        upstreamHost: this.#upstreamHost,
        bytesReceived: this.#ds.bytesReceived,
        bytesSent: this.#ds.bytesSent,
        durationMs: Number(process.hrtime.bigint() - this.ctx.startNs) / 1e6,
        grpcStatus: this.#grpcStatus,
        detail: this.#detail,
      });
    } catch (err) {
      this.#deps.log.error('reporting a request failed', { request_id: this.ctx.id, error: String(err) });
    } finally {
      this.#done();
    }
  }
}

function internal(err: unknown): ProxyError {
  return new ProxyError('internal_error', String(err), { side: 'internal', cause: err });
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
