// The per-request state every filter and upstream layer sees. One object per request, created by
// the HTTP engine after the request head is parsed and dropped when the exchange completes.
import type { IncomingHttpHeaders } from 'node:http';
import type { ServicePortBinding, Snapshot, WorkloadBinding } from '../../config/model.ts';
import type { HostPort } from '../hbone/authority.ts';
import type { SpiffeId } from '../identity/spiffe.ts';
import type { WorkloadLabels } from '../observe/workload-labels.ts';
import type { UpstreamTarget } from '../upstream/target.ts';
import type { Reason } from './reasons.ts';

export type Binding = ServicePortBinding | WorkloadBinding;

/**
 * What a tunnel carries to: the CONNECT's peer, source and destination, and the binding and snapshot
 * in force. On a live tunnel the last two follow configuration changes; a request copies them once.
 */
export interface TunnelInfo {
  readonly binding: Binding;
  readonly peer: SpiffeId;
  readonly source: HostPort;
  /** The CONNECT :authority, i.e. the original destination. */
  readonly destination: HostPort;
  readonly snapshot: Snapshot;
  /** The source workload's metric labels, resolved once when the tunnel is accepted. */
  readonly sourceWorkload?: WorkloadLabels | undefined;
}

/** The start of a request body, as RequestContext.readBody returns it. */
export interface BodyPrefix {
  readonly bytes: Buffer;
  /** True when `bytes` is the whole body; false when the body goes on past the limit. */
  readonly complete: boolean;
}

export interface RequestContext {
  readonly id: string;
  readonly startNs: bigint;
  readonly tunnel: TunnelInfo;
  /** The snapshot this request runs on to the end, even if a new one is applied meanwhile. */
  readonly snapshot: Snapshot;
  readonly method: string;
  /**
   * Path and query as they will go upstream: as received until a filter rewrites them (path
   * normalization, URL rewrites). Filters that match on the path read it here.
   */
  path: string;
  /** Path and query exactly as the client sent them (for the access log). */
  readonly originalPath: string;
  readonly authority: string;
  readonly protocol: 'HTTP/1.0' | 'HTTP/1.1' | 'HTTP/2';
  readonly grpc: boolean;
  /** Request headers as they will go upstream; filters may change them. Lower-case names. */
  readonly headers: IncomingHttpHeaders;
  /**
   * Aborted when the client side ends before the exchange completes: the client went away, its
   * body failed, or the waypoint reset the response (src/proxy/exchange.ts). A local reply, or a
   * response that completes, never aborts it.
   */
  readonly signal: AbortSignal;
  /** Typed per-request values filters hand to each other (keys are symbols owned by a filter). */
  readonly attributes: Map<symbol, unknown>;
  /** Human-readable decisions, in order (for explain and debug logs). */
  readonly explain: string[];
  /**
   * Reads the request body up to `maxBytes` (or to its end), for a filter that must see it before
   * the request goes upstream. The body still goes upstream whole: the read bytes are replayed,
   * then the rest streams with backpressure; no more than `maxBytes` is held. A request without a
   * body resolves at once with an empty buffer and `complete: true`. The first call decides the
   * limit; later calls return the same result. Rejects when the client's body fails, and then the
   * request has already ended as a downstream reset (`signal` is aborted).
   */
  readBody(maxBytes: number): Promise<BodyPrefix>;
  /**
   * Where the request goes and under which timeouts and retries: set by the router filter. Left
   * undefined, the request goes to its tunnel's own binding with no timeout and no retry.
   */
  target: UpstreamTarget | undefined;
}

/** How an exchange ended, for onComplete, the access log and metrics. */
export interface Outcome {
  readonly status: number;
  readonly reason: Reason;
  readonly upstreamHost: string | undefined;
  readonly bytesReceived: number;
  readonly bytesSent: number;
  readonly durationMs: number;
  readonly grpcStatus: string | undefined;
  readonly detail: string | undefined;
}
