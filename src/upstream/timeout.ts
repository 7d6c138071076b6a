// The route timeout, the client's gRPC deadline and the stream idle timeout, as one upstream layer
// above the retry layer (l7-semantics.md §4.6; users-and-style.md A.19, A.20). Named kinds:
//
// - route timeout (Timeouts.requestMs): covers every attempt and back-off. Envoy starts it at the
//   end of the downstream request (end-of-stream); here it starts when the request enters the
//   upstream stack, because a body that the upstream never reads would otherwise keep the timer
//   from ever starting. With small bodies the two are the same; a slow upload counts here.
//   It covers the response head and then, for ordinary responses, the whole body as Envoy does.
//   Streams are exempt once their head arrived: gRPC requests (bounded by their own deadline
//   instead) and `text/event-stream` responses. WebSocket/upgrade requests are never subject to it
//   (Envoy disables the route timeout for upgrades).
// - gRPC deadline: the client's `grpc-timeout` header (Istio sets max_grpc_timeout 0: honoured,
//   no cap). The effective deadline is min(route timeout, grpc-timeout); it covers the whole
//   exchange, response body included.
// - stream idle timeout (Timeouts.idleMs, else run --stream-idle-timeout): no byte either way for
//   that long ends the stream: 408 `stream timeout` (SI) before the head, a reset after it.
//   Upgraded streams (WebSocket) included, as in Envoy.
//
// Expiry before the response head is a 504 `upstream request timeout` (UT) whose detail names the
// kind: `upstream_response_timeout`, `grpc_deadline_exceeded` or `stream_idle_timeout`. After the
// head the response is aborted (the client sees a reset, never a truncated success). A gRPC
// client whose own grpc-timeout expired gets grpc-status 4 DEADLINE_EXCEEDED (the engine sets it
// from the detail); a route timeout stays Istio's 504, which gRPC clients see as 14 UNAVAILABLE
// (l7-semantics.md §5.1; newer Envoy, envoyproxy/envoy#44479, sends 4 there too).
import type { IncomingHttpHeaders } from 'node:http';
import type { RequestContext } from '../pipeline/context.ts';
import { ProxyError } from '../pipeline/proxy-error.ts';
import type { ResponseSink, Send, UpstreamLayer, UpstreamRequest, UpstreamResponse } from './types.ts';

export const ROUTE_TIMEOUT_DETAIL = 'upstream_response_timeout';
export const GRPC_DEADLINE_DETAIL = 'grpc_deadline_exceeded';
export const IDLE_TIMEOUT_DETAIL = 'stream_idle_timeout';

const GRPC_UNITS: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1_000,
  m: 1,
  u: 0.001,
  n: 0.000_001,
};

/**
 * The `grpc-timeout` header in milliseconds (gRPC over HTTP/2: 1-8 ASCII digits and a unit of
 * H, M, S, m, u or n). Undefined when absent or malformed (a malformed header is ignored, as Envoy
 * does). Sub-millisecond values round up to 1 ms so they still expire.
 */
export function parseGrpcTimeout(value: string | string[] | undefined): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  const m = v === undefined ? null : /^(\d{1,8})([HMSmun])$/.exec(v);
  if (!m) return undefined;
  const ms = Number(m[1]) * GRPC_UNITS[m[2]!]!;
  return ms > 0 && ms < 1 ? 1 : ms;
}

interface Deadline {
  readonly ms: number;
  readonly detail: string;
  /** For a gRPC client's own deadline: DEADLINE_EXCEEDED (a route timeout keeps the 504's mapping). */
  readonly grpcStatus: number | undefined;
  /** Whether it still runs once the response head arrived. */
  readonly coversBody: (res: UpstreamResponse) => boolean;
}

function deadlineFor(req: UpstreamRequest, ctx: RequestContext): Deadline | undefined {
  if (req.protocol === 'upgrade') return undefined;
  const routeMs = ctx.target?.timeouts.requestMs || undefined;
  const grpcMs = ctx.grpc ? parseGrpcTimeout(ctx.headers['grpc-timeout']) : undefined;
  if (grpcMs !== undefined && (routeMs === undefined || grpcMs <= routeMs))
    return { ms: grpcMs, detail: GRPC_DEADLINE_DETAIL, grpcStatus: 4, coversBody: () => true };
  if (routeMs === undefined) return undefined;
  return {
    ms: routeMs,
    detail: ROUTE_TIMEOUT_DETAIL,
    grpcStatus: undefined,
    coversBody: (res) => !ctx.grpc && !isEventStream(res),
  };
}

function isEventStream(res: UpstreamResponse): boolean {
  const ct = res.headers['content-type'];
  return typeof ct === 'string' && ct.toLowerCase().startsWith('text/event-stream');
}

export interface TimeoutOptions {
  /**
   * The stream idle timeout when the route names none (run --stream-idle-timeout; Envoy's
   * default is 5 min). Applies to upgraded streams (WebSocket) too, as Envoy's does. 0: none.
   */
  readonly defaultIdleMs?: number;
}

export function timeout(opts: TimeoutOptions = {}): UpstreamLayer {
  return (next: Send): Send =>
    (req, ctx) => {
      const deadline = deadlineFor(req, ctx);
      const idleMs = (ctx.target?.timeouts.idleMs ?? opts.defaultIdleMs) || undefined;
      if (!deadline && !idleMs) return next(req, ctx);
      return new TimedRequest(next, req, ctx, deadline, idleMs).run();
    };
}

/**
 * One request under its timers: the request head, then (when they still apply) the body. It is
 * also the response handed up and the sink the response below writes into, so a timed request
 * costs one object rather than a response and a sink rebuilt around the ones below.
 */
class TimedRequest implements UpstreamResponse, ResponseSink {
  readonly #abort = new AbortController();
  readonly #outer: AbortSignal;
  #deadlineTimer: NodeJS.Timeout | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #expired: ProxyError | undefined;
  #linked = false;
  /** Settles what the layer above awaits now: the head, then the body. */
  #resolveHead: ((res: UpstreamResponse) => void) | undefined;
  #reject: ((err: unknown) => void) | undefined;
  #resolveBody: (() => void) | undefined;
  #res: UpstreamResponse | undefined;
  #sink: ResponseSink | undefined;
  /** The body ended, failed or timed out: nothing more goes to the sink. */
  #finished = false;

  readonly #next: Send;
  readonly #req: UpstreamRequest;
  readonly #ctx: RequestContext;
  readonly #deadline: Deadline | undefined;
  readonly #idleMs: number | undefined;

  constructor(
    next: Send,
    req: UpstreamRequest,
    ctx: RequestContext,
    deadline: Deadline | undefined,
    idleMs: number | undefined,
  ) {
    this.#next = next;
    this.#req = req;
    this.#ctx = ctx;
    this.#deadline = deadline;
    this.#idleMs = idleMs;
    // Linked until the response is over, so the client going away still cancels the attempt.
    this.#outer = req.signal ?? ctx.signal;
  }

  get status(): number {
    return this.#res!.status;
  }
  get headers(): IncomingHttpHeaders {
    return this.#res!.headers;
  }
  get upstreamHost(): string {
    return this.#res!.upstreamHost;
  }
  get endStream(): boolean | undefined {
    return this.#res!.endStream;
  }

  run(): Promise<UpstreamResponse> {
    if (this.#outer.aborted) this.#abort.abort(this.#outer.reason);
    else {
      this.#outer.addEventListener('abort', this, { once: true });
      this.#linked = true;
    }
    if (this.#deadline) this.#deadlineTimer = setTimeout(expireDeadline, this.#deadline.ms, this);
    this.#touch();
    const req = this.#req;
    const inner: UpstreamRequest = {
      ...req,
      signal: this.#abort.signal,
      onBodyChunk: this.#idleMs ? this.#onBodyChunk : req.onBodyChunk,
    };
    return new Promise<UpstreamResponse>((resolve, reject) => {
      this.#resolveHead = resolve;
      this.#reject = reject;
      this.#next(inner, this.#ctx).then(
        (res) => this.#onHead(inner, res),
        (err: unknown) => this.#onFailure(inner, err),
      );
    });
  }

  /** The outer signal's 'abort' listener (an object listener: no closure per request). */
  handleEvent(): void {
    this.#abort.abort(this.#outer.reason);
  }

  readonly #onBodyChunk = (chunk: Buffer): void => {
    this.#touch();
    this.#req.onBodyChunk(chunk);
  };

  #onHead(inner: UpstreamRequest, res: UpstreamResponse): void {
    if (inner.endpoint) this.#req.endpoint = inner.endpoint;
    if (this.#expired) {
      res.discard(); // answered too late: the client already has its 504
      return;
    }
    if (!this.#deadline?.coversBody(res)) this.#clearDeadline();
    this.#res = res;
    this.#touch();
    this.#resolveHead!(this);
  }

  #onFailure(inner: UpstreamRequest, err: unknown): void {
    if (inner.endpoint) this.#req.endpoint = inner.endpoint;
    this.#clear();
    this.#unlink();
    if (!this.#expired) this.#reject!(err);
  }

  stream(sink: ResponseSink): Promise<void> {
    const res = this.#res!;
    if (this.#expired) {
      const err = this.#expired;
      this.#unlink();
      sink.abort(err);
      res.discard();
      return Promise.reject(err);
    }
    this.#sink = sink;
    return new Promise<void>((resolve, reject) => {
      this.#resolveBody = resolve;
      this.#reject = reject;
      res.stream(this).then(
        () => {
          this.#finish();
          resolve();
        },
        (err: unknown) => {
          this.#finish();
          reject(err);
        },
      );
    });
  }

  discard(): void {
    this.#clear();
    this.#unlink();
    this.#res!.discard();
  }

  // The sink the response below writes into: each byte restarts the idle timer.
  write(chunk: Buffer): boolean {
    if (this.#finished) return true;
    this.#touch();
    return this.#sink!.write(chunk);
  }

  onDrain(resume: () => void): void {
    this.#sink!.onDrain(resume);
  }

  end(trailers: IncomingHttpHeaders | undefined): void {
    if (this.#finish()) this.#sink!.end(trailers);
  }

  abort(err: Error): void {
    if (this.#finish()) this.#sink!.abort(err);
  }

  /** The body is over: timers stop, the outer link goes. False when it already was. */
  #finish(): boolean {
    if (this.#finished) return false;
    this.#finished = true;
    this.#clear();
    this.#unlink();
    return true;
  }

  expire(err: ProxyError): void {
    if (this.#expired) return;
    this.#expired = err;
    this.#clear();
    this.#ctx.explain.push(`timeout: ${err.message}`);
    this.#abort.abort(err); // the attempt in flight is cancelled by the transport
    if (!this.#res) {
      // Before the head: the layer above gets the error now.
      this.#unlink();
      this.#reject!(err);
    } else if (this.#resolveBody && this.#finish()) {
      // While the body streams: the client sees a reset, never a truncated success.
      this.#sink!.abort(err);
      this.#res.discard();
      this.#reject!(err);
    }
  }

  /** Restarts the idle timer: a byte went one way or the other. */
  #touch(): void {
    const ms = this.#idleMs;
    if (!ms || this.#expired) return;
    if (this.#idleTimer) this.#idleTimer.refresh();
    else this.#idleTimer = setTimeout(expireIdle, ms, this, ms);
  }

  #unlink(): void {
    if (!this.#linked) return;
    this.#linked = false;
    this.#outer.removeEventListener('abort', this);
  }

  #clearDeadline(): void {
    clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = undefined;
  }

  #clear(): void {
    this.#clearDeadline();
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }

  get deadline(): Deadline | undefined {
    return this.#deadline;
  }
}

// Timer callbacks shared by every request (the request is the timer's argument: no closure each).
function expireDeadline(t: TimedRequest): void {
  const d = t.deadline!;
  t.expire(
    new ProxyError('upstream_request_timeout', `${d.detail}: ${d.ms} ms`, {
      ...(d.grpcStatus === undefined ? {} : { grpcStatus: d.grpcStatus }),
    }),
  );
}

function expireIdle(t: TimedRequest, ms: number): void {
  t.expire(new ProxyError('stream_idle_timeout', `${IDLE_TIMEOUT_DETAIL}: no bytes for ${ms} ms`));
}
