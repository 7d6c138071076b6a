// HTTP/1.1 upgrades (WebSocket and any other protocol): the request runs through the same engine
// and filter chain as any request; after a 101 the two connections are spliced byte for byte, each
// direction closing on its own, and either side's failure closing both. A refused upgrade (any
// non-101) is relayed to the client as the upstream sent it.
//
// Why not http-proxy-3 here: its ws pass accepts only `Upgrade: websocket` (it destroys every other
// upgrade) and reports failures through an EventEmitter; Node's http client over the HBONE tunnel
// gives the same proxying with every upgrade and our error model.
import http, { type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import { formatAuthority } from '../hbone/authority.ts';
import type { HboneClient } from '../hbone/client.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { ProxyError } from '../pipeline/proxy-error.ts';
import { toProxyError } from '../upstream/connect-error.ts';
import { openEndpoint } from '../upstream/open-endpoint.ts';
import { serviceHostOf, tunnelHeaders } from '../upstream/tunnel-headers.ts';
import type { ResponseSink, UpstreamRequest, UpstreamResponse } from '../upstream/types.ts';
import { ByteCounts, type Downstream, hostHeaderCount } from './downstream.ts';
import { encodeGrpcMessage } from './grpc-status.ts';

function rawHead(status: number, headers: OutgoingHttpHeaders): string {
  let out = `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value])
      out += `${name}: ${String(v).replace(/[\r\n]/g, '')}\r\n`;
  }
  return `${out}\r\n`;
}

/** The client side of an upgrade: a raw socket after the request head. */
export class UpgradeDownstream extends ByteCounts implements Downstream {
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  readonly headers: IncomingHttpHeaders;
  readonly protocol: 'HTTP/1.0' | 'HTTP/1.1';
  readonly body: Duplex;
  readonly upgrade: string;
  readonly sink: ResponseSink;
  readonly repeatedHost: boolean;
  #headersSent = false;
  readonly #socket: Duplex;

  constructor(req: IncomingMessage, socket: Duplex, head: Buffer) {
    super();
    this.#socket = socket;
    this.method = req.method ?? 'GET';
    this.path = req.url ?? '/';
    this.headers = req.headers;
    this.authority = req.headers.host ?? '';
    this.repeatedHost = hostHeaderCount(req.rawHeaders) > 1;
    this.protocol = req.httpVersion === '1.0' ? 'HTTP/1.0' : 'HTTP/1.1';
    this.upgrade = String(req.headers.upgrade ?? '');
    if (head.length > 0) socket.unshift(head);
    socket.on('error', () => {});
    socket.pause();
    this.body = socket;
    this.sink = {
      write: (chunk) => {
        this.sentBytes += chunk.length;
        return socket.write(chunk);
      },
      onDrain: (resume) => socket.on('drain', resume),
      end: () => socket.end(),
      abort: () => socket.destroy(),
    };
  }

  get headersSent(): boolean {
    return this.#headersSent;
  }

  respond(status: number, headers: OutgoingHttpHeaders): void {
    this.#headersSent = true;
    const h =
      status === 101
        ? { ...headers, connection: 'Upgrade', upgrade: this.upgrade }
        : { ...headers, connection: 'close' };
    this.#socket.write(rawHead(status, h));
  }

  localReply(status: number, body: string, headers: OutgoingHttpHeaders, grpc: boolean): void {
    if (this.#headersSent) {
      this.reset();
      return;
    }
    this.#headersSent = true;
    const h: OutgoingHttpHeaders = grpc
      ? { ...headers, 'grpc-status': '2', 'grpc-message': encodeGrpcMessage(body) }
      : {
          ...headers,
          'content-type': 'text/plain',
          'content-length': String(Buffer.byteLength(body)),
          connection: 'close',
        };
    this.sentBytes += Buffer.byteLength(body);
    this.#socket.end(rawHead(status, h) + body);
  }

  reset(): void {
    this.#socket.destroy();
  }

  onClose(cb: (completed: boolean) => void): void {
    if (this.#socket.destroyed) {
      queueMicrotask(() => cb(this.#socket.writableFinished));
      return;
    }
    this.#socket.once('close', () => cb(this.#socket.writableFinished));
  }
}

/** Upstream side: a fresh tunnel per upgrade (it becomes the connection), Node's client for the head. */
export function upgradeTransport(hbone: HboneClient, hbonePort: number, baggage: string) {
  return async (req: UpstreamRequest, ctx: RequestContext): Promise<UpstreamResponse> => {
    const endpoint = req.endpoint!;
    const upstreamHost = formatAuthority(endpoint.ip, endpoint.port);
    let tunnel: Duplex;
    try {
      tunnel = await openEndpoint(
        hbone,
        hbonePort,
        endpoint,
        tunnelHeaders(serviceHostOf(ctx.tunnel.binding), baggage, ctx.tunnel.source),
      );
    } catch (err) {
      throw toProxyError(err, `upgrade to ${upstreamHost}`);
    }
    return sendUpgrade(req, ctx, tunnel, upstreamHost);
  };
}

/** Sends the upgrade request's head over the tunnel; resolves with a 101 to splice or a refusal to relay. */
function sendUpgrade(
  req: UpstreamRequest,
  ctx: RequestContext,
  tunnel: Duplex,
  upstreamHost: string,
): Promise<UpstreamResponse> {
  const headers: OutgoingHttpHeaders = { ...req.headers, connection: 'Upgrade' };
  return new Promise<UpstreamResponse>((resolve, reject) => {
    const out = http.request({
      method: req.method,
      path: req.path,
      headers,
      // No `agent` at all: `agent: false` makes Node build a fresh Agent that ignores
      // createConnection and dials host:port itself (localhost:80).
      createConnection: () => tunnel as never,
    });
    const onAbort = (): void => {
      out.destroy();
      tunnel.destroy();
    };
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    const stopWatching = (): void => ctx.signal.removeEventListener('abort', onAbort);
    out.once('error', (err) => reject(toProxyError(err, `upgrade to ${upstreamHost}`)));
    out.once('upgrade', (res: IncomingMessage, socket: Duplex, head: Buffer) => {
      resolve({
        status: 101,
        headers: res.headers,
        upstreamHost,
        stream: (sink) => spliceUpgraded(socket, head, sink, req, stopWatching),
        discard: () => socket.destroy(),
      });
    });
    // The upstream refused to upgrade: relay its answer and end the connection afterwards.
    out.once('response', (res: IncomingMessage) => resolve(refusedUpgrade(res, tunnel, upstreamHost)));
    out.end();
  });
}

/**
 * Copies the upgraded connection both ways until each direction has ended; a failure of either
 * side resets both. `stopWatching` detaches the request's abort once the exchange is over.
 */
function spliceUpgraded(
  socket: Duplex,
  head: Buffer,
  sink: ResponseSink,
  req: UpstreamRequest,
  stopWatching: () => void,
): Promise<void> {
  return new Promise<void>((done) => {
    socket.on('error', () => {});
    if (head.length > 0) sink.write(head);
    let open = 2;
    const finish = (): void => {
      if (--open === 0) {
        stopWatching();
        done();
      }
    };
    const fail = (): void => {
      socket.destroy();
      sink.abort(new ProxyError('upstream_remote_reset', 'upgraded connection reset'));
      stopWatching();
      done();
    };
    // upstream → client
    socket.on('data', (chunk: Buffer) => {
      if (!sink.write(chunk)) socket.pause();
    });
    sink.onDrain(() => socket.resume());
    socket.once('end', () => {
      sink.end(undefined);
      finish();
    });
    socket.once('close', () => {
      if (!socket.readableEnded) fail();
    });
    // client → upstream
    const body = req.body!;
    body.on('data', (chunk: Buffer) => {
      req.onBodyChunk(chunk);
      if (!socket.write(chunk)) body.pause();
    });
    socket.on('drain', () => body.resume());
    body.once('end', () => {
      socket.end();
      finish();
    });
    body.once('close', () => {
      if (!body.readableEnded) fail();
    });
    // A client stream that fails must not become an uncaught exception.
    body.on('error', () => fail());
    body.resume();
  });
}

/** A non-101 answer to an upgrade, relayed as it came; the tunnel closes after it. */
function refusedUpgrade(res: IncomingMessage, tunnel: Duplex, upstreamHost: string): UpstreamResponse {
  return {
    status: res.statusCode ?? 502,
    headers: res.headers,
    upstreamHost,
    stream(sink) {
      return new Promise<void>((done) => {
        sink.onDrain(() => res.resume());
        res.on('data', (chunk: Buffer) => {
          if (!sink.write(chunk)) res.pause();
        });
        res.once('end', () => {
          sink.end(undefined);
          tunnel.destroy();
          done();
        });
        res.once('error', () => {
          sink.abort(new Error('upstream reset'));
          done();
        });
      });
    },
    discard() {
      res.destroy();
      tunnel.destroy();
    },
  };
}
