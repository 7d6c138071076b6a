// Building a request's context from its head: the one place that does it, shared by the HTTP
// engine and by `explain` (which runs the same filter chain over a hypothetical request), so both
// see the same headers, the same gRPC detection and the same initial state.
import type { IncomingHttpHeaders } from 'node:http';
import type { BodyPrefix, RequestContext, TunnelInfo } from '../pipeline/context.ts';
import { isGrpcContentType } from './grpc-status.ts';
import { upstreamRequestHeaders } from './headers.ts';

export interface RequestHead {
  readonly id: string;
  readonly startNs: bigint;
  readonly tunnel: TunnelInfo;
  readonly method: string;
  /** Path and query as received. */
  readonly path: string;
  readonly authority: string;
  readonly protocol: RequestContext['protocol'];
  /** The headers as received (lower-case names); hop-by-hop ones are dropped here. */
  readonly headers: IncomingHttpHeaders;
  readonly signal: AbortSignal;
  /** Reads a bounded body prefix (RequestContext.readBody); absent: the request has no body. */
  readonly readBody?: (maxBytes: number) => Promise<BodyPrefix>;
}

const NO_BODY: BodyPrefix = { bytes: Buffer.alloc(0), complete: true };

export function newRequestContext(head: RequestHead): RequestContext {
  const headers = upstreamRequestHeaders(head.headers);
  headers['x-request-id'] = head.id;
  return {
    id: head.id,
    startNs: head.startNs,
    tunnel: head.tunnel,
    snapshot: head.tunnel.snapshot,
    method: head.method,
    path: head.path,
    originalPath: head.path,
    authority: head.authority,
    protocol: head.protocol,
    grpc: isGrpcContentType(head.headers['content-type']),
    headers: headers as RequestContext['headers'],
    signal: head.signal,
    attributes: new Map(),
    explain: [],
    readBody: head.readBody ?? (() => Promise.resolve(NO_BODY)),
    target: undefined,
  };
}
