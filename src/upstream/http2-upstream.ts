// HTTP/2 (cleartext, prior knowledge) to endpoints, for gRPC and http2 ports: one HBONE tunnel per
// h2c session, each session multiplexing up to 100 requests, so gRPC streams of many clients share
// few tunnels. Node's http2 client runs over the tunnel stream; trailers pass through both ways.
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import type { Endpoint } from '../../config/model.ts';
import { formatAuthority } from '../hbone/authority.ts';
import type { HboneClient } from '../hbone/client.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { REFUSED_STREAM, toProxyError } from './connect-error.ts';
import { openEndpoint } from './open-endpoint.ts';
import { serviceHostOf, tunnelHeaders } from './tunnel-headers.ts';
import type { UpstreamRequest, UpstreamResponse } from './types.ts';

const STREAMS_PER_SESSION = 100;

interface Session {
  readonly ready: Promise<ClientHttp2Session>;
  session?: ClientHttp2Session;
  active: number;
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
    const upstreamHost = formatAuthority(endpoint.ip, endpoint.port);
    const entry = this.#acquire(endpoint, ctx);
    let session: ClientHttp2Session;
    try {
      session = await entry.ready;
    } catch (err) {
      entry.active--;
      throw toProxyError(err, `HTTP/2 to ${upstreamHost}`);
    }
    let stream: ClientHttp2Stream;
    try {
      const { host, ...rest } = req.headers;
      stream = session.request(
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
    } catch (err) {
      entry.active--;
      throw toProxyError(err, `HTTP/2 to ${upstreamHost}`);
    }
    stream.once('close', () => {
      entry.active--;
      if (entry.active === 0 && !entry.dead) session.setTimeout(this.#opts.idleMs ?? 60_000);
    });
    session.setTimeout(0);
    const onAbort = (): void => {
      if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
    };
    // The attempt's own signal (a timeout or retry abandons it) else the client's.
    const signal = req.signal ?? ctx.signal;
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    stream.once('close', () => signal.removeEventListener('abort', onAbort));
    if (req.body) {
      // Both listeners attach in the same tick, so counting sees every chunk the pipe sends.
      req.body.on('data', req.onBodyChunk);
      req.body.pipe(stream);
      req.body.once('error', () => stream.close(http2.constants.NGHTTP2_CANCEL));
    }
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
      stream.once('response', (headers: IncomingHttpHeaders) => {
        stream.off('error', onEarlyError);
        stream.off('close', onEarlyClose);
        stream.on('error', () => {});
        const status = Number(headers[':status']);
        delete headers[':status'];
        resolve({
          status,
          headers,
          upstreamHost,
          stream(sink) {
            return new Promise<void>((done, fail) => {
              let trailers: IncomingHttpHeaders | undefined;
              stream.once('trailers', (t: IncomingHttpHeaders) => {
                trailers = t;
              });
              sink.onDrain(() => stream.resume());
              stream.on('data', (chunk: Buffer) => {
                if (!sink.write(chunk)) stream.pause();
              });
              stream.once('end', () => {
                sink.end(trailers);
                done();
              });
              stream.once('close', () => {
                if (stream.readableEnded) return;
                const err = toProxyError(
                  Object.assign(new Error(`stream reset (code ${stream.rstCode})`), { code: 'ECONNRESET' }),
                  `HTTP/2 to ${upstreamHost}`,
                );
                sink.abort(err);
                fail(err);
              });
            });
          },
          discard() {
            stream.close(http2.constants.NGHTTP2_CANCEL);
          },
        });
      });
    });
  }

  close(): void {
    for (const list of this.#sessions.values()) for (const s of list) s.session?.destroy();
    this.#sessions.clear();
  }

  #acquire(endpoint: Endpoint, ctx: RequestContext): Session {
    // Per Service too: a session's CONNECT names one Service in `forwarded: host=`.
    const serviceHost = serviceHostOf(ctx.tunnel.binding);
    const key = `${endpoint.ip}|${endpoint.port}|${endpoint.identity}|${endpoint.transport ?? 'hbone'}|${serviceHost}`;
    let list = this.#sessions.get(key);
    if (!list) {
      list = [];
      this.#sessions.set(key, list);
    }
    for (const s of list) {
      if (!s.dead && s.active < STREAMS_PER_SESSION) {
        s.active++;
        return s;
      }
    }
    const authority = formatAuthority(endpoint.ip, endpoint.port);
    const owner = list;
    const entry: Session = {
      active: 1,
      dead: false,
      ready: openEndpoint(
        this.#hbone,
        this.#opts.hbonePort,
        endpoint,
        tunnelHeaders(serviceHost, this.#opts.baggage),
      ).then((tunnel) => {
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
        return session;
      }),
    };
    entry.ready.catch(() => {
      entry.dead = true;
      const i = owner.indexOf(entry);
      if (i >= 0) owner.splice(i, 1);
    });
    list.push(entry);
    return entry;
  }
}
