// The one error type of the data path: what failed (a reason code), on which side, and whether
// trying again could help. Layers throw it; the HTTP engine turns it into the reason's local reply.
import type { Reason } from './reasons.ts';

export type ErrorSide = 'downstream' | 'upstream' | 'internal';

export class ProxyError extends Error {
  readonly reason: Reason;
  readonly side: ErrorSide;
  /** True when the request provably did not reach the application (safe to send elsewhere). */
  readonly retryable: boolean;
  /** The upstream refused the HTTP/2 stream (REFUSED_STREAM): Envoy's `refused-stream` retry condition. */
  readonly refusedStream: boolean;
  /** The grpc-status a gRPC client gets instead of the one mapped from the reason's HTTP status. */
  readonly grpcStatus: number | undefined;
  constructor(
    reason: Reason,
    message: string,
    opts: {
      side?: ErrorSide;
      retryable?: boolean;
      refusedStream?: boolean;
      grpcStatus?: number;
      cause?: unknown;
    } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = 'ProxyError';
    this.reason = reason;
    this.side = opts.side ?? 'upstream';
    this.retryable = opts.retryable ?? false;
    this.refusedStream = opts.refusedStream ?? false;
    this.grpcStatus = opts.grpcStatus;
  }
}

export function isProxyError(err: unknown): err is ProxyError {
  return err instanceof ProxyError;
}
