import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Snapshot } from '../../config/model.ts';
import { testContext } from '../../src/upstream/test-support.ts';
import type { FaultPolicy } from '../routing/index.ts';
import { chosen, createFaultFilter, FAULT_DELAYED, faultDelayMs, faultFilterFactory } from './index.ts';

const abortAll: FaultPolicy = {
  delay: undefined,
  abort: { httpStatus: 418, grpcStatus: undefined, fraction: 1 },
};

function filterWith(policy: FaultPolicy | undefined, random: () => number = () => 0) {
  const slept: number[] = [];
  const filter = createFaultFilter({
    policyFor: () => policy,
    random,
    sleep: (ms) => {
      slept.push(ms);
      return Promise.resolve();
    },
  });
  return { filter, slept };
}

describe('fault filter', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('continues when the route has no fault', async () => {
    const { filter } = filterWith(undefined);
    expect(await filter.onRequestHeaders!(testContext())).toEqual({ kind: 'continue' });
  });

  it('aborts with the configured status, `fault filter abort` and detail fault_filter_abort', async () => {
    const { filter } = filterWith(abortAll);
    expect(await filter.onRequestHeaders!(testContext())).toEqual({
      kind: 'reply',
      reason: 'fault_abort',
      status: 418,
      headers: undefined,
      detail: 'fault_filter_abort',
    });
  });

  it('gives a gRPC client the configured grpc-status', async () => {
    const { filter } = filterWith({
      delay: undefined,
      abort: { httpStatus: 503, grpcStatus: 14, fraction: 1 },
    });
    const verdict = await filter.onRequestHeaders!(testContext({ grpc: true }));
    expect(verdict).toMatchObject({ kind: 'reply', reason: 'fault_abort', headers: { 'grpc-status': '14' } });
    const http = await filter.onRequestHeaders!(testContext({ grpc: false }));
    expect(http).toMatchObject({ kind: 'reply', status: 503, headers: undefined });
  });

  it('delays, marks the request for flag DI, then aborts, decided independently', async () => {
    const draws = [0.1, 0.9]; // delay chosen (0.1 < 0.5), abort not (0.9 ≥ 0.5)
    const policy: FaultPolicy = {
      delay: { ms: 250, fraction: 0.5 },
      abort: { httpStatus: 503, grpcStatus: undefined, fraction: 0.5 },
    };
    const { filter, slept } = filterWith(policy, () => draws.shift()!);
    const ctx = testContext();
    expect(await filter.onRequestHeaders!(ctx)).toEqual({ kind: 'continue' });
    expect(slept).toEqual([250]);
    expect(faultDelayMs(ctx)).toBe(250);

    const draws2 = [0.7, 0.2]; // delay not chosen, abort chosen
    const other = filterWith(policy, () => draws2.shift()!);
    const ctx2 = testContext();
    expect(await other.filter.onRequestHeaders!(ctx2)).toMatchObject({ kind: 'reply', status: 503 });
    expect(ctx2.attributes.has(FAULT_DELAYED)).toBe(false);
    expect(other.slept).toEqual([]);
  });

  it('applies a fraction exactly: below it is chosen, at it is not; 0 and 1 never draw', () => {
    expect(chosen(0.3, () => 0.299_999)).toBe(true);
    expect(chosen(0.3, () => 0.3)).toBe(false);
    const never = () => {
      throw new Error('drew');
    };
    expect(chosen(1, never)).toBe(true);
    expect(chosen(0, never)).toBe(false);
  });

  it('aborts about 30% of 2000 requests with Math.random (5-sigma bounds)', async () => {
    const filter = createFaultFilter({
      policyFor: () => ({
        delay: undefined,
        abort: { httpStatus: 503, grpcStatus: undefined, fraction: 0.3 },
      }),
    });
    let aborted = 0;
    for (let i = 0; i < 2000; i++) {
      const v = await filter.onRequestHeaders!(testContext());
      if (v.kind === 'reply') aborted++;
    }
    // mean 600, sigma = sqrt(2000 · 0.3 · 0.7) ≈ 20.5
    expect(aborted).toBeGreaterThan(600 - 5 * 20.5);
    expect(aborted).toBeLessThan(600 + 5 * 20.5);
  });

  it('stops waiting when the client goes away during the delay', async () => {
    vi.useFakeTimers();
    const client = new AbortController();
    const filter = createFaultFilter({
      policyFor: () => ({ delay: { ms: 10_000, fraction: 1 }, abort: abortAll.abort }),
    });
    let done = false;
    const verdict = Promise.resolve(filter.onRequestHeaders!(testContext({ signal: client.signal }))).then(
      (v) => {
        done = true;
        return v;
      },
    );
    await vi.advanceTimersByTimeAsync(100);
    expect(done).toBe(false);
    client.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toBe(true);
    expect(await verdict).toEqual({ kind: 'continue' }); // no abort reply to a client that left
  });

  it('waits the full delay with the default timer', async () => {
    vi.useFakeTimers();
    const filter = createFaultFilter({
      policyFor: () => ({ delay: { ms: 500, fraction: 1 }, abort: undefined }),
    });
    let done = false;
    void Promise.resolve(filter.onRequestHeaders!(testContext())).then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(499);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(done).toBe(true);
  });

  it('is not built for a snapshot without routing faults', () => {
    const snapshot = { filters: {} } as unknown as Snapshot;
    expect(faultFilterFactory().create(snapshot)).toBeUndefined();
    const empty = { filters: { routing: { ports: new Map(), statuses: [] } } } as unknown as Snapshot;
    expect(faultFilterFactory().create(empty)).toBeUndefined();
  });
});
