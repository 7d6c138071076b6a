// The top of the upstream stack: the waypoint-wide overload checks on a new request. A request
// counts as pending from here until its response headers arrive (or it fails); past
// maxPending, or while the heap sheds, it gets 503 with x-envoy-overloaded at once and nothing is
// sent. Requests already past this point keep going.
import { ProxyError } from '../pipeline/proxy-error.ts';
import type { UpstreamLayer, UpstreamResponse } from './types.ts';

export interface PendingLimitOptions {
  readonly maxPending: number;
  /** True while the heap is above its high-water mark. */
  readonly shedding?: () => boolean;
  readonly onRefused?: (limit: 'pending_requests' | 'heap') => void;
}

export interface PendingLimit {
  readonly layer: UpstreamLayer;
  /** Requests waiting on upstream response headers now. */
  readonly pending: () => number;
}

export function pendingLimit(opts: PendingLimitOptions): PendingLimit {
  let pending = 0;
  // Shared by every request: the count goes down once the head arrived or the send failed.
  const headed = (res: UpstreamResponse): UpstreamResponse => {
    pending--;
    return res;
  };
  const failed = (err: unknown): never => {
    pending--;
    throw err;
  };
  const layer: UpstreamLayer = (next) => (req, ctx) => {
    const refusal = refuse(opts, pending);
    if (refusal) return Promise.reject(refusal);
    pending++;
    let sent: Promise<UpstreamResponse>;
    try {
      sent = next(req, ctx);
    } catch (err) {
      pending--;
      return Promise.reject(err);
    }
    return sent.then(headed, failed);
  };
  return { layer, pending: () => pending };
}

/** The overload check: a ProxyError when the request must be refused now. */
function refuse(opts: PendingLimitOptions, pending: number): ProxyError | undefined {
  if (opts.shedding?.()) {
    opts.onRefused?.('heap');
    return new ProxyError('overload_heap', 'heap above its high-water mark', {
      side: 'internal',
      retryable: false,
    });
  }
  if (pending >= opts.maxPending) {
    opts.onRefused?.('pending_requests');
    return new ProxyError('overload_pending_requests', `${pending} requests pending upstream`, {
      side: 'internal',
      retryable: false,
    });
  }
  return undefined;
}
