// One shape for the client side of an exchange, whether it arrived as HTTP/1.x (Node's http server
// parsing the tunnel's bytes) or HTTP/2 (a stream of an h2c session on the tunnel), so the engine
// has a single request path. Each adapter counts wire bytes for metrics and knows how to answer
// locally in its protocol, gRPC-shaped when the client speaks gRPC.

import type { IncomingMessage, ServerResponse } from 'node:http';
import http2, {
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Duplex, Readable } from 'node:stream';
import type { ResponseSink } from '../upstream/types.ts';
import { encodeGrpcMessage, grpcStatusForHttp } from './grpc-status.ts';

export interface Downstream {
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  /** Lower-case request headers without pseudo-headers. */
  readonly headers: IncomingHttpHeaders;
  readonly protocol: 'HTTP/1.0' | 'HTTP/1.1' | 'HTTP/2';
  readonly body: Readable | null;
  /** The Upgrade header's protocol when this is an HTTP/1.1 upgrade (WebSocket, ...). */
  readonly upgrade?: string;
  /** More than one Host header (RFC 9112 §3.2: 400); Node keeps only the first in `headers`. */
  readonly repeatedHost?: boolean;
  readonly headersSent: boolean;
  readonly bytesReceived: number;
  readonly bytesSent: number;
  /** Counts request-body bytes as the upstream side consumes them (never attach 'data' here: it would start the flow). */
  received(n: number): void;
  /** Sends the response head; endStream: it is the whole response (HTTP/2: one HEADERS with END_STREAM). */
  respond(status: number, headers: OutgoingHttpHeaders, endStream?: boolean): void;
  readonly sink: ResponseSink;
  /** Answers locally: plain text, or trailers-only gRPC. */
  localReply(status: number, body: string, headers: OutgoingHttpHeaders, grpc: boolean): void;
  /** Aborts the response mid-way (the client sees a reset, not a truncated success). */
  reset(): void;
  /** Called once when the client side is gone or the exchange finished. */
  onClose(cb: (completed: boolean) => void): void;
}

/** Wire-byte counts every downstream keeps for metrics and the access log. */
export abstract class ByteCounts {
  protected receivedBytes = 0;
  protected sentBytes = 0;
  get bytesReceived(): number {
    return this.receivedBytes;
  }
  get bytesSent(): number {
    return this.sentBytes;
  }
  /** Counts request-body bytes as the upstream side consumes them. */
  received(n: number): void {
    this.receivedBytes += n;
  }
}

/** What an HTTP/1 exchange needs from the server it came through (the tunnel dispatcher). */
export interface Http1Host {
  /** Draining: each response asks the client to close its connection. */
  readonly draining: boolean;
  /** The exchange on `socket` is over (its response closed); called before the engine hears of it. */
  exchangeClosed(socket: Duplex): void;
}

/** An HTTP/1.x exchange; it is its own response sink (no closures per request). */
export class Http1Downstream extends ByteCounts implements Downstream, ResponseSink {
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  readonly headers: IncomingHttpHeaders;
  readonly protocol: 'HTTP/1.0' | 'HTTP/1.1';
  readonly body: Readable | null;
  readonly sink: ResponseSink = this;
  readonly repeatedHost: boolean;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #host: Http1Host;
  #onClose: ((completed: boolean) => void) | undefined;

  constructor(req: IncomingMessage, res: ServerResponse, host: Http1Host) {
    super();
    this.#req = req;
    this.#res = res;
    this.method = req.method ?? 'GET';
    this.path = req.url ?? '/';
    this.headers = req.headers;
    this.authority = req.headers.host ?? '';
    this.repeatedHost = hostHeaderCount(req.rawHeaders) > 1;
    this.protocol = req.httpVersion === '1.0' ? 'HTTP/1.0' : 'HTTP/1.1';
    const hasBody =
      req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    this.body = hasBody ? req : null;
    this.#host = host;
    // One listener for the host and the engine ('close' fires once).
    res.on('close', () => {
      host.exchangeClosed(req.socket);
      this.#onClose?.(res.writableFinished);
    });
  }

  write(chunk: Buffer): boolean {
    this.sentBytes += chunk.length;
    return this.#res.write(chunk);
  }

  onDrain(resume: () => void): void {
    this.#res.on('drain', resume);
  }

  end(trailers: IncomingHttpHeaders | undefined): void {
    const r = this.#res;
    if (trailers && Object.keys(trailers).length > 0 && r.chunkedEncoding)
      r.addTrailers(trailers as Record<string, string>);
    r.end();
  }

  abort(): void {
    this.reset();
  }

  get headersSent(): boolean {
    return this.#res.headersSent;
  }

  respond(status: number, headers: OutgoingHttpHeaders): void {
    // Draining: this exchange finishes, then the inner connection closes (`Connection: close`).
    if (this.#host.draining) this.#res.shouldKeepAlive = false;
    this.#res.writeHead(status, headers);
  }

  localReply(status: number, body: string, headers: OutgoingHttpHeaders, grpc: boolean): void {
    if (this.#res.headersSent) {
      this.reset();
      return;
    }
    if (this.#host.draining) this.#res.shouldKeepAlive = false;
    if (grpc) {
      this.#res.writeHead(200, {
        ...headers,
        'content-type': 'application/grpc',
        // A filter may name the gRPC status itself (fault abort grpcStatus).
        'grpc-status': headers['grpc-status'] ?? String(grpcStatusForHttp(status)),
        'grpc-message': encodeGrpcMessage(body),
        'content-length': '0',
      });
      this.#res.end();
      return;
    }
    const bytes = Buffer.from(body);
    this.sentBytes += bytes.length;
    this.#res.writeHead(status, {
      ...headers,
      'content-type': 'text/plain',
      'content-length': String(bytes.length),
    });
    this.#res.end(bytes);
    // Unread request bodies would otherwise stall the keep-alive connection.
    if (this.body && !this.#req.readableEnded) this.#req.resume();
  }

  reset(): void {
    this.#res.destroy();
    this.#req.socket?.destroy();
  }

  /** One listener (the engine's); never called if registered after the close. */
  onClose(cb: (completed: boolean) => void): void {
    this.#onClose = cb;
  }
}

/** An HTTP/2 stream's exchange; it is its own response sink (no closures per request). */
export class Http2Downstream extends ByteCounts implements Downstream, ResponseSink {
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  readonly headers: IncomingHttpHeaders;
  readonly protocol = 'HTTP/2' as const;
  readonly body: Readable | null;
  readonly sink: ResponseSink = this;
  #pendingTrailers: OutgoingHttpHeaders | undefined;
  #endedWithHead = false;
  readonly #stream: ServerHttp2Stream;

  constructor(stream: ServerHttp2Stream, headers: IncomingHttpHeaders) {
    super();
    this.#stream = stream;
    this.method = (headers[':method'] as string) ?? 'GET';
    this.path = (headers[':path'] as string) ?? '/';
    this.authority = (headers[':authority'] as string) ?? (headers.host as string) ?? '';
    this.headers = headers;
    this.body = stream.endAfterHeaders ? null : stream;
    stream.on('error', ignore);
    stream.on('wantTrailers', () => this.#sendTrailers());
  }

  write(chunk: Buffer): boolean {
    this.sentBytes += chunk.length;
    return this.#stream.write(chunk);
  }

  onDrain(resume: () => void): void {
    this.#stream.on('drain', resume);
  }

  end(trailers: IncomingHttpHeaders | undefined): void {
    // A head sent with END_STREAM was the whole response.
    if (this.#endedWithHead) return;
    if (trailers && Object.keys(trailers).length > 0) this.#pendingTrailers = trailers as OutgoingHttpHeaders;
    // 'wantTrailers' follows the last DATA frame: the trailers go out then, ending the stream.
    this.#stream.end();
  }

  abort(): void {
    this.reset();
  }

  /** Trailers the upstream sent (none: Node ends the stream with an empty DATA frame). */
  #sendTrailers(): void {
    try {
      this.#stream.sendTrailers(this.#pendingTrailers ?? {});
    } catch {
      // Trailers Node refuses (a connection-specific field): a reset, never a success without them.
      this.reset();
    }
  }

  get headersSent(): boolean {
    return this.#stream.headersSent;
  }

  respond(status: number, headers: OutgoingHttpHeaders, endStream = false): void {
    if (this.#stream.destroyed) return;
    if (endStream) {
      // A trailers-only gRPC reply stays one HEADERS frame with END_STREAM.
      this.#endedWithHead = true;
      this.#stream.respond({ ...headers, ':status': status }, { endStream: true });
      // The reply is complete while the client still sends: RST_STREAM NO_ERROR tells it to stop
      // (RFC 9113 §8.1, as Envoy does); Node sends it after the HEADERS frame.
      if (this.body && !this.#stream.readableEnded) this.#stream.close(http2.constants.NGHTTP2_NO_ERROR);
      return;
    }
    // waitForTrailers keeps the stream open after the body so upstream trailers (gRPC status) can follow.
    this.#stream.respond({ ...headers, ':status': status }, { waitForTrailers: true });
  }

  localReply(status: number, body: string, headers: OutgoingHttpHeaders, grpc: boolean): void {
    const s = this.#stream;
    if (s.destroyed) return;
    if (s.headersSent) {
      this.reset();
      return;
    }
    if (grpc) {
      s.respond(
        {
          ...headers,
          ':status': 200,
          'content-type': 'application/grpc',
          // A filter may name the gRPC status itself (fault abort grpcStatus).
          'grpc-status': headers['grpc-status'] ?? String(grpcStatusForHttp(status)),
          'grpc-message': encodeGrpcMessage(body),
        },
        { endStream: true },
      );
    } else {
      const bytes = Buffer.from(body);
      this.sentBytes += bytes.length;
      s.respond({
        ...headers,
        ':status': status,
        'content-type': 'text/plain',
        'content-length': bytes.length,
      });
      s.end(bytes);
    }
    // The client may still be sending a body we will never read: let it go without a reset.
    if (this.body && !s.readableEnded) s.resume();
  }

  reset(): void {
    if (!this.#stream.destroyed) this.#stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  }

  onClose(cb: (completed: boolean) => void): void {
    this.#stream.on('close', () =>
      cb(this.#stream.rstCode === http2.constants.NGHTTP2_NO_ERROR && this.#stream.writableFinished),
    );
  }
}

function ignore(): void {}

/** Host headers among raw name/value pairs. */
export function hostHeaderCount(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') n++;
  return n;
}
