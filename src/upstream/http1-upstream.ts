// HTTP/1.1 to endpoints through undici: one undici Pool per endpoint whose connector opens an HBONE
// tunnel (CONNECT ENDPOINT_IP:TARGET_PORT) instead of a TCP socket. undici then owns keep-alive and
// connection reuse, so one tunnel carries many requests one after another, and its parser runs on
// the tunnel's bytes directly. Responses are dispatched with backpressure: when the downstream
// cannot take more, undici's controller is paused until it drains.
import type { IncomingHttpHeaders } from 'node:http';
import { type Duplex, PassThrough, type Readable } from 'node:stream';
import { type Dispatcher, Pool } from 'undici';
import type { Endpoint } from '../../config/model.ts';
import type { HboneClient } from '../hbone/client.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { isAttemptBody, wholeBody } from './attempt-body.ts';
import { toProxyError } from './connect-error.ts';
import { hostKey } from './load-balancer.ts';
import { openEndpoint } from './open-endpoint.ts';
import { poolKey, serviceHostOf, tunnelHeaders } from './tunnel-headers.ts';
import type { ResponseSink, UpstreamRequest, UpstreamResponse } from './types.ts';

interface PoolEntry {
  readonly pool: Pool;
  /** `ip:port` and `http://ip:port`, formatted once per pool. */
  readonly host: string;
  readonly origin: string;
  lastUsed: number;
}

export interface Http1UpstreamOptions {
  readonly hbonePort: number;
  readonly baggage: string;
  /** Pools unused this long are closed (endpoints come and go with the config). */
  readonly poolIdleMs?: number;
}

export class Http1Upstream {
  readonly #pools = new Map<string, PoolEntry>();
  readonly #hbone: HboneClient;
  readonly #opts: Http1UpstreamOptions;
  readonly #sweep: NodeJS.Timeout;
  #connections = 0;

  constructor(hbone: HboneClient, opts: Http1UpstreamOptions) {
    this.#hbone = hbone;
    this.#opts = opts;
    const idle = opts.poolIdleMs ?? 120_000;
    this.#sweep = setInterval(() => this.#closeIdle(idle), Math.min(idle, 30_000));
    this.#sweep.unref();
  }

  /** Inner HTTP/1.1 connections (one HBONE tunnel each) currently open. */
  get connectionCount(): number {
    return this.#connections;
  }

  send(req: UpstreamRequest, ctx: RequestContext): Promise<UpstreamResponse> {
    const endpoint = req.endpoint!;
    const entry = this.#pool(endpoint, ctx);
    return new Http1Exchange(req, req.signal ?? ctx.signal, entry.host).dispatch(entry);
  }

  close(): Promise<void> {
    clearInterval(this.#sweep);
    const all = [...this.#pools.values()].map((e) => e.pool.destroy().catch(() => {}));
    this.#pools.clear();
    return Promise.all(all).then(() => {});
  }

  #pool(endpoint: Endpoint, ctx: RequestContext): PoolEntry {
    // A plain (egress) and an HBONE pool for the same ip:port never share connections, nor do two
    // Services: a tunnel's CONNECT names one Service in `forwarded: host=`. Only that name is kept,
    // never the binding (it would pin its snapshot for the pool's life).
    const serviceHost = serviceHostOf(ctx.tunnel.binding);
    const key = poolKey(endpoint, serviceHost);
    const found = this.#pools.get(key);
    if (found) {
      found.lastUsed = Date.now();
      return found;
    }
    const authority = hostKey(endpoint);
    const baggage = this.#opts.baggage;
    const pool = new Pool(`http://${authority}`, {
      // Inner connections stay open across requests; undici's 4 s default idles out before Node
      // servers' 5 s keep-alive does, which avoids racing a server-side close.
      keepAliveTimeout: 4_000,
      pipelining: 1,
      connect: (_opts, callback) => {
        openEndpoint(this.#hbone, this.#opts.hbonePort, endpoint, tunnelHeaders(serviceHost, baggage)).then(
          (stream) => {
            this.#connections++;
            stream.once('close', () => this.#connections--);
            callback(null, stream as unknown as Duplex as never);
          },
          (err: unknown) => callback(err as Error, null),
        );
      },
    });
    pool.on('connectionError', () => {});
    const entry = { pool, host: authority, origin: `http://${authority}`, lastUsed: Date.now() };
    this.#pools.set(key, entry);
    return entry;
  }

  #closeIdle(idleMs: number): void {
    const now = Date.now();
    for (const [key, entry] of this.#pools) {
      const stats = entry.pool.stats;
      if (now - entry.lastUsed > idleMs && stats.pending === 0 && stats.running === 0) {
        this.#pools.delete(key);
        entry.pool.close().catch(() => {});
      }
    }
  }
}

/** One request on its way through undici: the dispatch handler, then the response it resolves with. */
class Http1Exchange implements Dispatcher.DispatchHandler, UpstreamResponse {
  status = 0;
  headers: IncomingHttpHeaders = {};
  readonly upstreamHost: string;
  readonly #req: UpstreamRequest;
  readonly #signal: AbortSignal;
  readonly #body: Readable | Buffer | null;
  #controller: Dispatcher.DispatchController | undefined;
  #sink: ResponseSink | undefined;
  #resolve: ((res: UpstreamResponse) => void) | undefined;
  #reject: ((err: unknown) => void) | undefined;
  #bodyDone: ((err?: Error) => void) | undefined;
  #responded = false;

  constructor(req: UpstreamRequest, signal: AbortSignal, upstreamHost: string) {
    this.#req = req;
    this.#signal = signal;
    this.upstreamHost = upstreamHost;
    this.#body = req.body ? (wholeBody(req.body) ?? detachable(req.body)) : null;
  }

  dispatch(entry: PoolEntry): Promise<UpstreamResponse> {
    return new Promise<UpstreamResponse>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
      // The attempt's own signal (a timeout or retry abandons it) else the client's.
      this.#signal.addEventListener('abort', this, { once: true });
      try {
        entry.pool.dispatch(this.#options(entry.origin), this);
      } catch (err) {
        // undici refused the request outright: nothing will ever read the body we gave it.
        this.#done();
        destroyBody(this.#body);
        reject(toProxyError(err, `HTTP/1.1 to ${this.upstreamHost}`));
      }
    });
  }

  #options(origin: string): Dispatcher.DispatchOptions {
    const req = this.#req;
    return {
      origin,
      method: req.method,
      path: req.path,
      headers: req.headers as Record<string, string | string[]>,
      body: this.#body,
      // Timeouts belong to the route (the timeout filter), not to the transport.
      headersTimeout: 0,
      bodyTimeout: 0,
      // undici must not retry on its own: what is safe to retry is the retry layer's decision.
      idempotent: false,
      blocking: false,
      upgrade: null,
    };
  }

  /** The signal's 'abort' listener (an object listener: no closure per request). */
  handleEvent(): void {
    this.#controller?.abort(new Error('request abandoned'));
  }

  #done(): void {
    this.#signal.removeEventListener('abort', this);
  }

  onRequestStart(c: Dispatcher.DispatchController): void {
    this.#controller = c;
    if (this.#signal.aborted) c.abort(new Error('request abandoned'));
  }

  onResponseStart(c: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    // 1xx other than 101 are consumed by undici; hold the body until the engine is ready for it.
    this.#responded = true;
    c.pause();
    this.status = statusCode;
    this.headers = headers;
    this.#resolve?.(this);
  }

  stream(sink: ResponseSink): Promise<void> {
    const c = this.#controller!;
    this.#sink = sink;
    sink.onDrain(() => c.resume());
    const finished = new Promise<void>((resolve, reject) => {
      this.#bodyDone = (err) => (err ? reject(err) : resolve());
    });
    c.resume();
    return finished;
  }

  discard(): void {
    this.#done();
    this.#controller?.abort(new Error('response discarded'));
  }

  onBodySent(chunk: Buffer): void {
    this.#req.onBodyChunk(chunk);
  }

  onResponseData(c: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#sink && !this.#sink.write(chunk)) c.pause();
  }

  onResponseEnd(_c: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    this.#done();
    this.#sink?.end(trailers);
    this.#bodyDone?.();
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    this.#done();
    // Failed or refused after dispatch: let go of the client's stream, read or not.
    destroyBody(this.#body);
    const proxyErr = toProxyError(err, `HTTP/1.1 to ${this.upstreamHost}`);
    if (!this.#responded) {
      this.#reject?.(proxyErr);
      return;
    }
    this.#sink?.abort(proxyErr);
    this.#bodyDone?.(proxyErr);
  }
}

function destroyBody(body: Readable | Buffer | null): void {
  if (body && !Buffer.isBuffer(body)) body.destroy();
}

/**
 * What undici gets as the request body: the client's bytes, with backpressure, in a stream undici
 * may destroy. undici destroys a stream body once it has sent it (or failed to); when the body is
 * an HTTP/2 client's stream that would reset the very stream the response still has to go out on.
 */
function detachable(body: Readable): Readable {
  // A stream an upstream layer made for this attempt (a replay) is undici's to destroy as it likes.
  if (isAttemptBody(body)) return body;
  const out = new PassThrough();
  // The client's failure is reported through the client's own stream; undici sees this one end.
  out.on('error', () => {});
  body.pipe(out);
  body.once('error', (err) => out.destroy(err));
  body.once('close', () => {
    if (!body.readableEnded) out.destroy(new Error('request body aborted'));
  });
  out.once('close', () => body.unpipe(out));
  return out;
}
