// Envoy's retry policy as an upstream layer (l7-semantics.md §4.7, §5.4): the attempt loop, the
// per-try timeout, full-jitter back-off, retry on another endpoint, the cluster's retry limit or
// budget, and a bounded replay buffer for the request body.
//
// Rules, in the order they are checked for each failed attempt:
// - nothing is retried once the client went away, or after the response went downstream (this
//   layer only retries before it returns a response; a response it retries is discarded);
// - circuit-breaker overflow (UO) and no healthy upstream (UH) are never retried, as in Envoy;
// - the result must match a `retryOn` token (see matchesError / matchesResponse);
// - attempts left, body still replayable, and the cluster admits one more retry in flight.
// Safe by default: `reset-before-request` retries only failures where ProxyError.retryable is set,
// i.e. the transport proves no byte of the request reached the application (could not connect,
// refused stream). A request that reached the application is retried only when a token says so.
//
// The per-try timeout (Timeouts.perTryMs) bounds each attempt up to its response head; on expiry
// the attempt is aborted and retried when `5xx`, `gateway-error` or `reset` is configured (Envoy
// treats a per-try timeout as a reset). The route timeout above (timeout.ts) covers the whole loop.
import type { RequestContext } from '../pipeline/context.ts';
import { isProxyError, ProxyError } from '../pipeline/proxy-error.ts';
import { UPSTREAM_RESET_REASONS } from '../pipeline/reasons.ts';
import type { CircuitBreakers } from './circuit-breaker.ts';
import { hostKey } from './load-balancer.ts';
import { DEFAULT_REPLAY_BUFFER_BYTES, ReplayableBody } from './replayable-body.ts';
import { onSettled } from './settled-response.ts';
import { NO_RETRY, NO_TARGET_RETRY, type RetryPolicy } from './target.ts';
import type { Send, UpstreamLayer, UpstreamRequest, UpstreamResponse } from './types.ts';

/** What the retry layer did, for the access log (flags URX, UO) and explain. */
export interface RetryState {
  /** Retries made (attempts after the first). */
  retries: number;
  /** The result handed back was retriable but no retry was left: Envoy's flag URX. */
  exhausted: boolean;
  /** A retry was refused by the cluster's maxRetries or retry budget: flag UO. */
  overflow: boolean;
  /** Why a retriable result was not retried, e.g. `retry_skipped_body_too_large`. */
  skipped: string | undefined;
}

export const RETRY_STATE = Symbol('upstream.retry');

export function retryState(ctx: RequestContext): RetryState | undefined {
  return ctx.attributes.get(RETRY_STATE) as RetryState | undefined;
}

/**
 * Envoy's local-reply body for a reset after retries: `... retried and the latest reset reason: X`
 * instead of `... reset reason: X`. For the engine to use when retryState(ctx).retries > 0.
 */
export function retriedResetBody(body: string): string {
  return body.replace('reset reason: ', 'retried and the latest reset reason: ');
}

/** gRPC status codes named by the x-envoy-retry-grpc-on tokens. */
const GRPC_TOKENS: Readonly<Record<string, number>> = {
  cancelled: 1,
  'deadline-exceeded': 4,
  'resource-exhausted': 8,
  internal: 13,
  unavailable: 14,
};

/** How an attempt failed, as Envoy's retry predicates see it. */
type FailureKind = 'connect-failure' | 'refused-stream' | 'reset' | 'per-try-timeout' | 'final';

function failureKind(err: ProxyError): FailureKind {
  if (err.reason === 'upstream_connect_failure') {
    return err.refusedStream ? 'refused-stream' : 'connect-failure';
  }
  if (UPSTREAM_RESET_REASONS.has(err.reason)) return 'reset';
  if (err.reason === 'upstream_request_timeout' && err.message.startsWith(PER_TRY_DETAIL))
    return 'per-try-timeout';
  return 'final'; // overflow, no healthy upstream, internal errors, downstream errors
}

// Policies are frozen and shared by every request of a snapshot: their token sets are built once.
const tokenSets = new WeakMap<readonly string[], ReadonlySet<string>>();
function tokens(retryOn: readonly string[]): ReadonlySet<string> {
  let set = tokenSets.get(retryOn);
  if (!set) {
    set = new Set(retryOn);
    tokenSets.set(retryOn, set);
  }
  return set;
}

/** Whether `retryOn` asks for a retry after this failure. */
export function matchesError(retryOn: readonly string[], err: ProxyError): boolean {
  const kind = failureKind(err);
  if (kind === 'final' || err.side !== 'upstream') return false;
  const on = tokens(retryOn);
  if (on.has('5xx') || on.has('gateway-error') || on.has('reset')) return true;
  if (kind === 'per-try-timeout') return false;
  if (on.has('reset-before-request') && err.retryable) return true;
  if (on.has('connect-failure') && kind === 'connect-failure') return true;
  if (on.has('refused-stream') && kind === 'refused-stream') return true;
  return false;
}

/** Whether `retryOn` asks for a retry of this response (its head only: status and headers). */
export function matchesResponse(policy: RetryPolicy, res: UpstreamResponse): boolean {
  const on = tokens(policy.retryOn);
  const s = res.status;
  if (on.has('5xx') && s >= 500 && s <= 599) return true;
  if (on.has('gateway-error') && (s === 502 || s === 503 || s === 504)) return true;
  if (on.has('retriable-4xx') && s === 409) return true;
  if (on.has('retriable-status-codes') && policy.retriableStatusCodes.includes(s)) return true;
  if (on.has('envoy-ratelimited') && res.headers['x-envoy-ratelimited'] !== undefined) return true;
  // Trailers-only gRPC responses carry grpc-status in the head; trailers are never waited for.
  const grpc = res.headers['grpc-status'];
  if (grpc !== undefined) {
    const code = Number(Array.isArray(grpc) ? grpc[0] : grpc);
    for (const [token, value] of Object.entries(GRPC_TOKENS))
      if (on.has(token) && code === value) return true;
  }
  return false;
}

/** Retry N (1-based) waits uniformly in [0, (2^N − 1)·base), capped at 10·base (Envoy). */
export function backoffMs(retry: number, baseMs: number, random: () => number): number {
  const ceiling = Math.min((2 ** retry - 1) * baseMs, 10 * baseMs);
  return Math.floor(random() * ceiling);
}

/** The ProxyError detail (access log) of a per-try timeout, Envoy's details string. */
export const PER_TRY_DETAIL = 'upstream_per_try_timeout';

export interface RetryOptions {
  /** The cluster's retry limit (maxRetries, retryBudget); absent: unlimited. */
  readonly breakers?: Pick<CircuitBreakers, 'tryAcquireRetry'>;
  readonly maxReplayBytes?: number;
  /** For tests: [0, 1). */
  readonly random?: () => number;
  /** For tests: resolves after `ms`, or rejects when `signal` aborts. */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

export function retry(opts: RetryOptions = {}): UpstreamLayer {
  const settings: LoopSettings = {
    random: opts.random ?? Math.random,
    sleep: opts.sleep ?? abortableSleep,
    cap: opts.maxReplayBytes ?? DEFAULT_REPLAY_BUFFER_BYTES,
    breakers: opts.breakers,
  };
  return (next: Send): Send =>
    (req, ctx) => {
      const policy = effectivePolicy(ctx);
      const perTryMs = ctx.target?.timeouts.perTryMs || undefined;
      if (policy.attempts <= 0 && !perTryMs) return next(req, ctx);
      return new RetryLoop(next, req, ctx, policy, perTryMs, settings).run();
    };
}

interface LoopSettings {
  readonly random: () => number;
  readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly cap: number;
  readonly breakers: Pick<CircuitBreakers, 'tryAcquireRetry'> | undefined;
}

type Outcome = { readonly res: UpstreamResponse } | { readonly err: ProxyError };

/** One request's attempts: send, decide whether to retry, back off, send again. */
class RetryLoop {
  readonly #next: Send;
  readonly #req: UpstreamRequest;
  readonly #ctx: RequestContext;
  readonly #policy: RetryPolicy;
  readonly #perTryMs: number | undefined;
  readonly #settings: LoopSettings;
  readonly #state: RetryState = { retries: 0, exhausted: false, overflow: false, skipped: undefined };
  /** The client going away, or the route timeout above: cancels everything. */
  readonly #outer: AbortSignal;
  readonly #body: ReplayableBody | undefined;
  /** Hosts of the attempts retried so far (Envoy's previous_hosts). */
  #tried: Set<string> | undefined;
  /** Request-body bytes reported upstream by all attempts, so replays are not counted twice. */
  #sentHighWater = 0;
  #retryInFlight: (() => void) | undefined;

  constructor(
    next: Send,
    req: UpstreamRequest,
    ctx: RequestContext,
    policy: RetryPolicy,
    perTryMs: number | undefined,
    settings: LoopSettings,
  ) {
    this.#next = next;
    this.#req = req;
    this.#ctx = ctx;
    this.#policy = policy;
    this.#perTryMs = perTryMs;
    this.#settings = settings;
    this.#outer = req.signal ?? ctx.signal;
    ctx.attributes.set(RETRY_STATE, this.#state);
    const length = Number(req.headers['content-length']);
    // An upgrade's body is the upgraded byte stream, read by the transport only after a 101 (a
    // refused upgrade leaves it untouched, so a retry resends it as is): never kept for replay.
    this.#body =
      req.body && policy.attempts > 0 && req.protocol !== 'upgrade'
        ? new ReplayableBody(req.body, settings.cap, Number.isFinite(length) ? length : undefined)
        : undefined;
  }

  async run(): Promise<UpstreamResponse> {
    for (let attempt = 0; ; attempt++) {
      // Only a per-try timeout cancels one attempt alone; otherwise the outer signal is the attempt's.
      const abort = this.#perTryMs ? new PerTryAbort(this.#outer) : undefined;
      const attemptReq = this.#attemptRequest(attempt, abort);
      const outcome = await this.#send(attemptReq, abort);
      this.#retryInFlight?.();
      this.#retryInFlight = undefined;
      if (attemptReq.endpoint) this.#req.endpoint = attemptReq.endpoint;
      const admitted = this.#admit(outcome, attempt);
      if (!admitted) return this.#hand(outcome, abort);
      this.#remember(attemptReq, outcome);
      if ('res' in outcome) {
        outcome.res.discard();
        abort?.unlink();
      }
      await this.#backoff(outcome, admitted);
      // The retry counts against the cluster's limit from back-off until its attempt settles.
      this.#retryInFlight = admitted;
    }
  }

  #attemptRequest(attempt: number, abort: PerTryAbort | undefined): UpstreamRequest {
    const req = this.#req;
    return {
      ...req,
      endpoint: undefined,
      signal: abort ? abort.signal : this.#outer,
      body: this.#body ? this.#body.attempt() : req.body,
      excludeHosts: this.#tried ? union(req.excludeHosts, this.#tried) : req.excludeHosts,
      onBodyChunk: !req.body ? req.onBodyChunk : attempt === 0 ? this.#onFirstChunk : this.#replayCounter(),
    };
  }

  /** The first attempt's bytes all count. */
  readonly #onFirstChunk = (chunk: Buffer): void => {
    this.#sentHighWater += chunk.length;
    this.#req.onBodyChunk(chunk);
  };

  /** A replay counts only the bytes past what earlier attempts reported. */
  #replayCounter(): (chunk: Buffer) => void {
    let sent = 0;
    return (chunk) => {
      sent += chunk.length;
      if (sent <= this.#sentHighWater) return;
      const fresh = sent - this.#sentHighWater;
      this.#sentHighWater = sent;
      this.#req.onBodyChunk(fresh >= chunk.length ? chunk : chunk.subarray(chunk.length - fresh));
    };
  }

  /** One attempt, bounded by the per-try timeout when there is one; a failure becomes an outcome. */
  async #send(attemptReq: UpstreamRequest, abort: PerTryAbort | undefined): Promise<Outcome> {
    try {
      const sent = this.#next(attemptReq, this.#ctx);
      return { res: abort ? await withPerTry(sent, this.#perTryMs!, abort) : await sent };
    } catch (err) {
      abort?.abort(err);
      abort?.unlink();
      return {
        err: isProxyError(err)
          ? err
          : new ProxyError('internal_error', String(err), { side: 'internal', cause: err }),
      };
    }
  }

  /**
   * Whether to retry this outcome: a function releasing the retry's slot in the cluster's retry
   * limit when it may, undefined when the outcome is handed back (state records why).
   */
  #admit(outcome: Outcome, attempt: number): (() => void) | undefined {
    const { policy, ctx } = { policy: this.#policy, ctx: this.#ctx };
    const retriable =
      'res' in outcome ? matchesResponse(policy, outcome.res) : matchesError(policy.retryOn, outcome.err);
    // Cancelled from above (client gone, route timeout): the layer above already answered.
    if (!retriable || this.#outer.aborted || ctx.signal.aborted) return undefined;
    if (attempt >= policy.attempts) {
      this.#state.exhausted = policy.attempts > 0;
      return undefined;
    }
    if (this.#body && !this.#body.replayable) {
      this.#state.skipped = 'retry_skipped_body_too_large';
      ctx.explain.push(
        `retry skipped: the request body is larger than the ${this.#settings.cap}-byte replay buffer`,
      );
      return undefined;
    }
    const cluster = ctx.target?.cluster;
    const breakers = this.#settings.breakers;
    const admitted = cluster && breakers ? breakers.tryAcquireRetry(cluster) : noop;
    if (admitted === 'overflow') {
      this.#state.overflow = true;
      ctx.explain.push(`retry refused: cluster ${cluster?.name} is at its retry limit`);
      return undefined;
    }
    return admitted;
  }

  /** The outcome handed up: the response (its per-try link released once it is over) or the error. */
  #hand(outcome: Outcome, abort: PerTryAbort | undefined): UpstreamResponse {
    if ('err' in outcome) throw outcome.err;
    return abort ? onSettled(outcome.res, () => abort.unlink()) : outcome.res;
  }

  /** The hosts a retry avoids: every one tried so far (Envoy's previous_hosts). */
  #remember(attemptReq: UpstreamRequest, outcome: Outcome): void {
    if (!this.#policy.avoidPreviousHosts) return;
    this.#tried ??= new Set();
    if (attemptReq.endpoint) this.#tried.add(hostKey(attemptReq.endpoint));
    if ('res' in outcome) this.#tried.add(outcome.res.upstreamHost);
  }

  /** Counts the retry and waits its back-off; the client going away or the route timeout ends it. */
  async #backoff(outcome: Outcome, admitted: () => void): Promise<void> {
    const state = this.#state;
    state.retries++;
    this.#ctx.explain.push(
      `retry ${state.retries}/${this.#policy.attempts} after ${'res' in outcome ? `status ${outcome.res.status}` : outcome.err.reason}`,
    );
    const { sleep, random } = this.#settings;
    try {
      await sleep(backoffMs(state.retries, this.#policy.backoffBaseMs, random), this.#outer);
    } catch {
      admitted();
      const outer = this.#outer;
      if (isProxyError(outer.reason)) throw outer.reason; // the route timeout
      throw new ProxyError('downstream_reset', 'client went away during retry back-off', {
        side: 'downstream',
      });
    }
  }
}

/** An attempt's own abort, linked to the outer signal, for the per-try timeout to cancel it alone. */
class PerTryAbort extends AbortController {
  readonly #outer: AbortSignal;

  constructor(outer: AbortSignal) {
    super();
    this.#outer = outer;
    if (outer.aborted) this.abort(outer.reason);
    else outer.addEventListener('abort', this, { once: true });
  }

  handleEvent(): void {
    this.abort(this.#outer.reason);
  }

  unlink(): void {
    this.#outer.removeEventListener('abort', this);
  }
}

function noop(): void {}

function effectivePolicy(ctx: RequestContext): RetryPolicy {
  const target = ctx.target;
  if (!target) return ctx.grpc ? NO_RETRY : NO_TARGET_RETRY;
  return target.retry;
}

function union(a: ReadonlySet<string> | undefined, b: ReadonlySet<string>): ReadonlySet<string> {
  if (!a || a.size === 0) return new Set(b);
  return new Set([...a, ...b]);
}

/** Bounds one attempt up to its response head; on expiry aborts it (the transport cancels it). */
function withPerTry(
  attempt: Promise<UpstreamResponse>,
  perTryMs: number,
  abort: AbortController,
): Promise<UpstreamResponse> {
  return new Promise((resolve, reject) => {
    let expired = false;
    const timer = setTimeout(() => {
      expired = true;
      const err = new ProxyError(
        'upstream_request_timeout',
        `${PER_TRY_DETAIL}: no response head within ${perTryMs} ms`,
      );
      abort.abort(err);
      reject(err);
    }, perTryMs);
    attempt.then(
      (res) => {
        clearTimeout(timer);
        if (expired)
          res.discard(); // came too late: nobody will read it
        else resolve(res);
      },
      (err: unknown) => {
        clearTimeout(timer);
        if (!expired) reject(err);
      },
    );
  });
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
