// The top of the upstream stack: the waypoint-wide overload checks on a new request. A request
// counts as pending from here until its response headers arrive (or it fails); past
// maxPending, or while the heap sheds, it gets 503 with x-envoy-overloaded at once and nothing is
// sent. Requests already past this point keep going.
import { ProxyError } from '../pipeline/proxy-error.ts';
import type { UpstreamLayer } from './types.ts';

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
  const layer: UpstreamLayer = (next) => async (req, ctx) => {
    if (opts.shedding?.()) {
      opts.onRefused?.('heap');
      throw new ProxyError('overload_heap', 'heap above its high-water mark', {
        side: 'internal',
        retryable: false,
      });
    }
    if (pending >= opts.maxPending) {
      opts.onRefused?.('pending_requests');
      throw new ProxyError('overload_pending_requests', `${pending} requests pending upstream`, {
        side: 'internal',
        retryable: false,
      });
    }
    pending++;
    try {
      return await next(req, ctx);
    } finally {
      pending--;
    }
  };
  return { layer, pending: () => pending };
}
