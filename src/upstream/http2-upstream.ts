// HTTP/2 (cleartext, prior knowledge) to endpoints, for gRPC and http2 ports: one HBONE tunnel per
// h2c session, each session multiplexing up to 100 requests, so gRPC streams of many clients share
// few tunnels. Node's http2 client runs over the tunnel stream; trailers pass through both ways.
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { Endpoint } from '../../config/model.ts';
import { formatAuthority } from '../hbone/authority.ts';
import type { HboneClient } from '../hbone/client.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { wholeBody } from './attempt-body.ts';
import { REFUSED_STREAM, toProxyError } from './connect-error.ts';
import { hostKey } from './load-balancer.ts';
import { openEndpoint } from './open-endpoint.ts';
import { poolKey, serviceHostOf, tunnelHeaders } from './tunnel-headers.ts';
import type { ResponseSink, UpstreamRequest, UpstreamResponse } from './types.ts';

const STREAMS_PER_SESSION = 100;
/** A peer that sends no SETTINGS within this long is not an HTTP/2 server: a connection failure. */
const SETTINGS_TIMEOUT_MS = 10_000;

interface Session {
  readonly ready: Promise<ClientHttp2Session>;
  session?: ClientHttp2Session;
  active: number;
  /** Streams this session takes: ours, or fewer when the peer's SETTINGS_MAX_CONCURRENT_STREAMS says so. */
  capacity: number;
  dead: boolean;
}

export interface Http2UpstreamOptions {
  readonly hbonePort: number;
  readonly baggage: string;
  readonly idleMs?: number;
}

export class Http2Upstream {
  readonly #sessions = new Map<string, Session[]>();
  readonly #hbone: HboneClient;
  readonly #opts: Http2UpstreamOptions;
  #count = 0;

  constructor(hbone: HboneClient, opts: Http2UpstreamOptions) {
    this.#hbone = hbone;
    this.#opts = opts;
  }

  get connectionCount(): number {
    return this.#count;
  }

  async send(req: UpstreamRequest, ctx: RequestContext): Promise<UpstreamResponse> {
    const endpoint = req.endpoint!;
    const upstreamHost = hostKey(endpoint);
    const entry = this.#acquire(endpoint, ctx);
    // The attempt's own signal (a timeout or retry abandons it) else the client's.
    const signal = req.signal ?? ctx.signal;
    let session: ClientHttp2Session;
    let stream: ClientHttp2Stream;
    try {
      session = await untilAborted(entry.ready, signal);
      stream = openStream(session, req, upstreamHost);
    } catch (err) {
      entry.active--;
      throw toProxyError(err, `HTTP/2 to ${upstreamHost}`);
    }
    this.#track(entry, session, stream, signal);
    if (req.body) sendBody(req, stream);
    return awaitResponse(stream, upstreamHost);
  }

  /** Counts the stream on its session until it closes, and cancels it when the signal aborts. */
  #track(entry: Session, session: ClientHttp2Session, stream: ClientHttp2Stream, signal: AbortSignal): void {
    const onAbort = (): void => {
      if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
    };
    stream.once('close', () => {
      entry.active--;
      if (entry.active === 0 && !entry.dead) session.setTimeout(this.#opts.idleMs ?? 60_000);
      signal.removeEventListener('abort', onAbort);
    });
    session.setTimeout(0);
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
  }

  close(): void {
    for (const list of this.#sessions.values()) for (const s of list) s.session?.destroy();
    this.#sessions.clear();
  }

  #acquire(endpoint: Endpoint, ctx: RequestContext): Session {
    // Per Service too: a session's CONNECT names one Service in `forwarded: host=`.
    const serviceHost = serviceHostOf(ctx.tunnel.binding);
    const key = poolKey(endpoint, serviceHost);
    let list = this.#sessions.get(key);
    if (!list) {
      list = [];
      this.#sessions.set(key, list);
    }
    for (const s of list) {
      if (!s.dead && s.active < s.capacity) {
        s.active++;
        return s;
      }
    }
    const owner = list;
    const entry: Session = {
      active: 1,
      capacity: STREAMS_PER_SESSION,
      dead: false,
      ready: openEndpoint(
        this.#hbone,
        this.#opts.hbonePort,
        endpoint,
        tunnelHeaders(serviceHost, this.#opts.baggage),
      ).then((tunnel) => this.#connect(tunnel, endpoint, entry, owner)),
    };
    entry.ready.catch(() => {
      entry.dead = true;
      const i = owner.indexOf(entry);
      if (i >= 0) owner.splice(i, 1);
    });
    list.push(entry);
    return entry;
  }

  /**
   * An h2c session on the tunnel, ready once the peer's SETTINGS came: streams sent before them
   * could exceed the peer's SETTINGS_MAX_CONCURRENT_STREAMS and be refused. Past that limit a
   * session takes no new request (the pool opens another, as Envoy's does).
   */
  #connect(
    tunnel: Duplex,
    endpoint: Endpoint,
    entry: Session,
    owner: Session[],
  ): Promise<ClientHttp2Session> {
    const authority = formatAuthority(endpoint.ip, endpoint.port);
    const session = http2.connect(`http://${authority}`, { createConnection: () => tunnel as never });
    entry.session = session;
    this.#count++;
    const forget = (): void => {
      if (entry.dead) return;
      entry.dead = true;
      this.#count--;
      const i = owner.indexOf(entry);
      if (i >= 0) owner.splice(i, 1);
    };
    session.on('error', () => {});
    session.once('close', forget);
    session.once('goaway', forget);
    session.on('timeout', () => session.close());
    session.on('remoteSettings', (settings) => {
      entry.capacity = Math.min(STREAMS_PER_SESSION, settings.maxConcurrentStreams ?? STREAMS_PER_SESSION);
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => session.destroy(), SETTINGS_TIMEOUT_MS);
      const onClose = (): void => {
        clearTimeout(timer);
        reject(Object.assign(new Error('h2c session closed before SETTINGS'), { code: 'ECONNREFUSED' }));
      };
      session.once('close', onClose);
      session.once('remoteSettings', () => {
        clearTimeout(timer);
        session.off('close', onClose);
        resolve(session);
      });
    });
  }
}

/** The request's HEADERS on a new stream of the session. */
function openStream(
  session: ClientHttp2Session,
  req: UpstreamRequest,
  upstreamHost: string,
): ClientHttp2Stream {
  const { host, ...rest } = req.headers;
  return session.request(
    {
      ...rest,
      ':method': req.method,
      ':path': req.path,
      ':scheme': 'http',
      ':authority':
        (req.headers[':authority'] as string | undefined) ?? (host as string | undefined) ?? upstreamHost,
    },
    { endStream: req.body === null },
  );
}

/** Pipes the request body into the stream, counting each chunk as it goes. */
function sendBody(req: UpstreamRequest, stream: ClientHttp2Stream): void {
  const body = req.body!;
  const whole = wholeBody(body);
  if (whole) {
    stream.end(whole);
    req.onBodyChunk(whole);
    return;
  }
  // Both listeners attach in the same tick, so counting sees every chunk the pipe sends.
  body.on('data', req.onBodyChunk);
  body.pipe(stream);
  body.once('error', () => stream.close(http2.constants.NGHTTP2_CANCEL));
}

/** p, unless signal aborts first (the client left, or a timeout or retry abandoned the attempt). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  const abandoned = (): Error => Object.assign(new Error('request abandoned'), { code: 'ECONNRESET' });
  if (signal.aborted) return Promise.reject(abandoned());
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abandoned());
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * The response head, once it arrives. Node emits 'response' and 'trailers' on a later tick than it
 * reads their frames, and may end the readable side before anyone reads it, so trailers are caught
 * from the moment the request is sent and stream() copes with a body that has already ended.
 */
function awaitResponse(stream: ClientHttp2Stream, upstreamHost: string): Promise<UpstreamResponse> {
  let trailers: IncomingHttpHeaders | undefined;
  stream.once('trailers', (t: IncomingHttpHeaders) => {
    trailers = t;
  });
  return new Promise<UpstreamResponse>((resolve, reject) => {
    const onEarlyError = (err: Error): void => reject(toProxyError(err, `HTTP/2 to ${upstreamHost}`));
    const onEarlyClose = (): void =>
      reject(
        toProxyError(
          Object.assign(new Error(`stream closed before response (code ${stream.rstCode})`), {
            code: stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM ? REFUSED_STREAM : 'ECONNRESET',
          }),
          `HTTP/2 to ${upstreamHost}`,
        ),
      );
    stream.once('error', onEarlyError);
    stream.once('close', onEarlyClose);
    stream.once('response', (headers: IncomingHttpHeaders, flags: number) => {
      stream.off('error', onEarlyError);
      stream.off('close', onEarlyClose);
      stream.on('error', () => {});
      const status = Number(headers[':status']);
      delete headers[':status'];
      resolve({
        status,
        headers,
        upstreamHost,
        // A HEADERS frame with END_STREAM: no body, no trailers (gRPC's trailers-only reply).
        endStream: (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0,
        stream: (sink) => streamBody(stream, sink, () => trailers, upstreamHost),
        discard() {
          stream.close(http2.constants.NGHTTP2_CANCEL);
        },
      });
    });
  });
}

/** Copies the body into sink with backpressure, then ends it with the trailers. */
function streamBody(
  stream: ClientHttp2Stream,
  sink: ResponseSink,
  trailers: () => IncomingHttpHeaders | undefined,
  upstreamHost: string,
): Promise<void> {
  return new Promise<void>((done, fail) => {
    const finish = (): void => {
      // The response is complete before the request: stop sending it, and free the stream.
      if (!stream.writableEnded) stream.close(http2.constants.NGHTTP2_CANCEL);
      sink.end(trailers());
      done();
    };
    const reset = (): void => {
      const err = toProxyError(
        Object.assign(new Error(`stream reset (code ${stream.rstCode})`), { code: 'ECONNRESET' }),
        `HTTP/2 to ${upstreamHost}`,
      );
      sink.abort(err);
      fail(err);
    };
    // 'end' (and even 'close') may have come before the engine asked for the body.
    if (stream.readableEnded) {
      finish();
      return;
    }
    if (stream.destroyed) {
      reset();
      return;
    }
    sink.onDrain(() => stream.resume());
    stream.on('data', (chunk: Buffer) => {
      if (!sink.write(chunk)) stream.pause();
    });
    stream.once('end', finish);
    stream.once('close', () => {
      if (!stream.readableEnded) reset();
    });
  });
}
