// HTTP/1.1 to endpoints through undici: one undici Pool per endpoint whose connector opens an HBONE
// tunnel (CONNECT ENDPOINT_IP:TARGET_PORT) instead of a TCP socket. undici then owns keep-alive and
// connection reuse, so one tunnel carries many requests one after another, and its parser runs on
// the tunnel's bytes directly. Responses are dispatched with backpressure: when the downstream
// cannot take more, undici's controller is paused until it drains.
import type { IncomingHttpHeaders } from 'node:http';
import { type Duplex, PassThrough, type Readable } from 'node:stream';
import { type Dispatcher, Pool } from 'undici';
import type { Endpoint } from '../../config/model.ts';
import { formatAuthority } from '../hbone/authority.ts';
import type { HboneClient } from '../hbone/client.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { toProxyError } from './connect-error.ts';
import { openEndpoint } from './open-endpoint.ts';
import { serviceHostOf, tunnelHeaders } from './tunnel-headers.ts';
import type { ResponseSink, UpstreamRequest, UpstreamResponse } from './types.ts';

interface PoolEntry {
  readonly pool: Pool;
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
    const pool = this.#pool(endpoint, ctx);
    const upstreamHost = formatAuthority(endpoint.ip, endpoint.port);
    const body = req.body ? detachable(req.body) : null;
    return new Promise<UpstreamResponse>((resolve, reject) => {
      let sink: ResponseSink | undefined;
      let controller: Dispatcher.DispatchController | undefined;
      let settleBody: (() => void) | undefined;
      let bodyError: ((err: Error) => void) | undefined;
      let responded = false;
      // The attempt's own signal (a timeout or retry abandons it) else the client's.
      const signal = req.signal ?? ctx.signal;
      const onAbort = (): void => controller?.abort(new Error('request abandoned'));
      signal.addEventListener('abort', onAbort, { once: true });
      const done = (): void => signal.removeEventListener('abort', onAbort);
      const handler: Dispatcher.DispatchHandler = {
        onRequestStart(c) {
          controller = c;
          if (signal.aborted) c.abort(new Error('request abandoned'));
        },
        onResponseStart(c, statusCode, headers) {
          // 1xx other than 101 are consumed by undici; hold the body until the engine is ready for it.
          responded = true;
          c.pause();
          resolve({
            status: statusCode,
            headers: headers as IncomingHttpHeaders,
            upstreamHost,
            stream(s) {
              sink = s;
              s.onDrain(() => c.resume());
              const finished = new Promise<void>((res, rej) => {
                settleBody = res;
                bodyError = rej;
              });
              c.resume();
              return finished;
            },
            discard() {
              done();
              c.abort(new Error('response discarded'));
            },
          });
        },
        onBodySent(chunk) {
          req.onBodyChunk(chunk);
        },
        onResponseData(c, chunk) {
          if (sink && !sink.write(chunk)) c.pause();
        },
        onResponseEnd(_c, trailers) {
          done();
          sink?.end(trailers as IncomingHttpHeaders);
          settleBody?.();
        },
        onResponseError(_c, err) {
          done();
          // Failed or refused after dispatch: let go of the client's stream, read or not.
          body?.destroy();
          const proxyErr = toProxyError(err, `HTTP/1.1 to ${upstreamHost}`);
          if (!responded) {
            reject(proxyErr);
            return;
          }
          sink?.abort(proxyErr);
          bodyError?.(proxyErr);
        },
      };
      try {
        pool.dispatch(
          {
            origin: `http://${upstreamHost}`,
            method: req.method,
            path: req.path,
            headers: req.headers as Record<string, string | string[]>,
            body,
            // Timeouts belong to the route (the timeout filter), not to the transport.
            headersTimeout: 0,
            bodyTimeout: 0,
            // undici must not retry on its own: what is safe to retry is the retry layer's decision.
            idempotent: false,
            blocking: false,
            upgrade: null,
          },
          handler,
        );
      } catch (err) {
        // undici refused the request outright: nothing will ever read the body we gave it.
        done();
        body?.destroy();
        reject(toProxyError(err, `HTTP/1.1 to ${upstreamHost}`));
      }
    });
  }

  close(): Promise<void> {
    clearInterval(this.#sweep);
    const all = [...this.#pools.values()].map((e) => e.pool.destroy().catch(() => {}));
    this.#pools.clear();
    return Promise.all(all).then(() => {});
  }

  #pool(endpoint: Endpoint, ctx: RequestContext): Pool {
    // A plain (egress) and an HBONE pool for the same ip:port never share connections, nor do two
    // Services: a tunnel's CONNECT names one Service in `forwarded: host=`. Only that name is kept,
    // never the binding (it would pin its snapshot for the pool's life).
    const serviceHost = serviceHostOf(ctx.tunnel.binding);
    const key = `${endpoint.ip}|${endpoint.port}|${endpoint.identity}|${endpoint.transport ?? 'hbone'}|${serviceHost}`;
    const found = this.#pools.get(key);
    if (found) {
      found.lastUsed = Date.now();
      return found.pool;
    }
    const authority = formatAuthority(endpoint.ip, endpoint.port);
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
    this.#pools.set(key, { pool, lastUsed: Date.now() });
    return pool;
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

/**
 * What undici gets as the request body: the client's bytes, with backpressure, in a stream undici
 * may destroy. undici destroys a stream body once it has sent it (or failed to); when the body is
 * an HTTP/2 client's stream that would reset the very stream the response still has to go out on.
 */
function detachable(body: Readable): Readable {
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
