import { describe, expect, it } from 'vitest';
import { CircuitBreakers, type OverflowKind, type Release } from './circuit-breaker.ts';
import {
  type Cluster,
  type ConnectionPoolPolicy,
  DEFAULT_CONNECTION_POOL,
  DEFAULT_TRAFFIC_POLICY,
  type RetryBudgetPolicy,
} from './cluster.ts';

function cluster(pool: Partial<ConnectionPoolPolicy>, retryBudget?: RetryBudgetPolicy): Cluster {
  return {
    name: 'inbound-vip|8080|http|echo.default.svc.cluster.local',
    service: { namespace: 'default', name: 'echo', hostname: 'echo.default.svc.cluster.local', labels: {} },
    port: 8080,
    protocol: 'http',
    subset: undefined,
    endpoints: [],
    policy: {
      ...DEFAULT_TRAFFIC_POLICY,
      connectionPool: { ...DEFAULT_CONNECTION_POOL, ...pool },
      retryBudget,
    },
  };
}

function acquired(r: Release | 'overflow' | Promise<Release>): Release {
  if (r === 'overflow') throw new Error('unexpected overflow');
  if (r instanceof Promise) throw new Error('unexpectedly queued');
  return r;
}

describe('request limit (http2MaxRequests)', () => {
  it('admits exactly the limit, overflows the next, and a release frees one slot', () => {
    const overflows: OverflowKind[] = [];
    const cb = new CircuitBreakers({ onOverflow: (_c, kind) => overflows.push(kind) });
    const c = cluster({ http2MaxRequests: 3 });
    const held = [1, 2, 3].map(() => acquired(cb.tryAcquireRequest(c)));
    expect(cb.tryAcquireRequest(c)).toBe('overflow');
    expect(overflows).toEqual(['requests']);
    held[0]!();
    held[0]!(); // a second call must not free another slot
    acquired(cb.tryAcquireRequest(c));
    expect(cb.tryAcquireRequest(c)).toBe('overflow');
    expect(cb.counts(c.name).requests).toBe(3);
  });

  it('keys counters by cluster name, so a new snapshot of the cluster sees the same load', () => {
    const cb = new CircuitBreakers();
    acquired(cb.tryAcquireRequest(cluster({ http2MaxRequests: 1 })));
    expect(cb.tryAcquireRequest(cluster({ http2MaxRequests: 1 }))).toBe('overflow');
    // A raised limit applies at once.
    acquired(cb.tryAcquireRequest(cluster({ http2MaxRequests: 2 })));
  });
});

describe('pending limit (http1MaxPendingRequests)', () => {
  it('queues HTTP/1 requests beyond maxConnections up to the pending limit, in order', async () => {
    const cb = new CircuitBreakers();
    const c = cluster({ maxConnections: 1, http1MaxPendingRequests: 2 });
    const active = acquired(cb.tryAcquireRequest(c, 'http1'));
    const first = cb.tryAcquireRequest(c, 'http1') as Promise<Release>;
    const second = cb.tryAcquireRequest(c, 'http1') as Promise<Release>;
    expect(first).toBeInstanceOf(Promise);
    expect(second).toBeInstanceOf(Promise);
    expect(cb.counts(c.name)).toMatchObject({ requests: 1, pending: 2 });
    expect(cb.tryAcquireRequest(c, 'http1')).toBe('overflow');
    const order: string[] = [];
    void first.then(() => order.push('first'));
    void second.then(() => order.push('second'));
    active();
    const firstRelease = await first;
    expect(order).toEqual(['first']);
    expect(cb.counts(c.name)).toMatchObject({ requests: 1, pending: 1 });
    firstRelease();
    (await second)();
    expect(order).toEqual(['first', 'second']);
    expect(cb.counts(c.name)).toMatchObject({ requests: 0, pending: 0 });
  });

  it('drops a queued request whose signal aborts, and frees its pending slot', async () => {
    const cb = new CircuitBreakers();
    const c = cluster({ maxConnections: 1, http1MaxPendingRequests: 1 });
    const active = acquired(cb.tryAcquireRequest(c, 'http1'));
    const abort = new AbortController();
    const queued = cb.tryAcquireRequest(c, 'http1', abort.signal) as Promise<Release>;
    abort.abort(new Error('client went away'));
    await expect(queued).rejects.toThrow('client went away');
    expect(cb.counts(c.name)).toMatchObject({ requests: 1, pending: 0 });
    active();
    acquired(cb.tryAcquireRequest(c, 'http1'));
  });

  it('does not apply to HTTP/2, which multiplexes on one connection', () => {
    const cb = new CircuitBreakers();
    const c = cluster({ maxConnections: 1, http1MaxPendingRequests: 1 });
    for (let i = 0; i < 10; i++) acquired(cb.tryAcquireRequest(c, 'http2'));
  });
});

describe('retries', () => {
  it('uses maxRetries without a budget', () => {
    const cb = new CircuitBreakers();
    const c = cluster({ maxRetries: 2 });
    acquired(cb.tryAcquireRetry(c));
    acquired(cb.tryAcquireRetry(c));
    expect(cb.tryAcquireRetry(c)).toBe('overflow');
  });

  it('with a budget allows max(minRetryConcurrency, floor(percent × active requests)), ignoring maxRetries', () => {
    const cb = new CircuitBreakers();
    const c = cluster({ maxRetries: 1 }, { percent: 20, minRetryConcurrency: 3 });
    // 10 active requests: 20% is 2, below the minimum of 3.
    for (let i = 0; i < 10; i++) acquired(cb.tryAcquireRequest(c));
    expect(cb.retryLimit(c)).toBe(3);
    const retries = [1, 2, 3].map(() => acquired(cb.tryAcquireRetry(c)));
    expect(cb.tryAcquireRetry(c)).toBe('overflow');
    // 24 active: floor(4.8) = 4.
    for (let i = 0; i < 14; i++) acquired(cb.tryAcquireRequest(c));
    expect(cb.retryLimit(c)).toBe(4);
    acquired(cb.tryAcquireRetry(c));
    expect(cb.tryAcquireRetry(c)).toBe('overflow');
    retries[0]!();
    acquired(cb.tryAcquireRetry(c));
  });
});
