// What flows between the HTTP engine and the upstream layers (C.2 (b) of the design: each layer is a
// function from Send to Send, composed in one visible list in layers.ts).
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { Endpoint } from '../../config/model.ts';
import type { RequestContext } from '../pipeline/context.ts';

export type UpstreamProtocol = 'http1' | 'http2' | 'upgrade';

export interface UpstreamRequest {
  readonly method: string;
  readonly path: string;
  /** Hop-by-hop headers already removed; `host` / `:authority` preserved. */
  readonly headers: OutgoingHttpHeaders;
  /** null when the request has no body. */
  readonly body: Readable | null;
  readonly protocol: UpstreamProtocol;
  /** Called with each request-body chunk as it goes upstream (for byte counts; never buffers). */
  readonly onBodyChunk: (chunk: Buffer) => void;
  /** Set by the endpoint-pick layer. */
  endpoint?: Endpoint;
  /**
   * Aborted when this attempt is abandoned (per-try or route timeout, a retry replacing it): the
   * transport must then cancel the upstream request and release its connection or stream. Absent:
   * only ctx.signal (the client went away) cancels it.
   */
  readonly signal?: AbortSignal;
  /** `ip:port` of endpoints not to pick (already tried by the retry layer). */
  excludeHosts?: ReadonlySet<string>;
}

/** Where the response body goes: the downstream response, with backpressure. */
export interface ResponseSink {
  /** Returns false when the consumer wants the producer to pause until onDrain fires. */
  write(chunk: Buffer): boolean;
  onDrain(resume: () => void): void;
  end(trailers: IncomingHttpHeaders | undefined): void;
  /** The upstream failed mid-body: reset the downstream. */
  abort(err: Error): void;
}

export interface UpstreamResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** `ip:port` of the endpoint that answered. */
  readonly upstreamHost: string;
  /** The head ended the response (HTTP/2 HEADERS with END_STREAM: gRPC trailers-only): no body, no trailers. */
  readonly endStream?: boolean;
  /** Starts the body flowing into sink; resolves when it ended or failed. Call exactly once. */
  stream(sink: ResponseSink): Promise<void>;
  /** Drops the response without reading it (e.g. a retry will replace it). */
  discard(): void;
}

export type Send = (req: UpstreamRequest, ctx: RequestContext) => Promise<UpstreamResponse>;
export type UpstreamLayer = (next: Send) => Send;
