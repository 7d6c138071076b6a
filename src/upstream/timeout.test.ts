import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { compose } from './layers.ts';
import { retry } from './retry.ts';
import {
  collectingSink,
  fakeResponse,
  hang,
  type Step,
  scriptedSend,
  testContext,
  testRequest,
  testTarget,
} from './test-support.ts';
import { parseGrpcTimeout, timeout } from './timeout.ts';

describe('parseGrpcTimeout', () => {
  it.each([
    ['100m', 100],
    ['5S', 5_000],
    ['1H', 3_600_000],
    ['2M', 120_000],
    ['2500u', 2.5],
    ['1n', 1], // sub-millisecond still expires
    ['99999999m', 99_999_999],
  ])('%s → %d ms', (header, ms) => {
    expect(parseGrpcTimeout(header)).toBe(ms);
  });

  it.each([undefined, '', '100', 'm', '1.5S', '123456789m', '10s', '-1S', ' 1S'])(
    '%j is ignored',
    (header) => {
      expect(parseGrpcTimeout(header)).toBeUndefined();
    },
  );
});

describe('timeout layer', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function stack(steps: Step[], ctx = testContext()) {
    const { send, calls } = scriptedSend(steps);
    const composed = compose([timeout(), retry({ random: () => 0 })], send);
    const result = composed(testRequest(), ctx);
    result.catch(() => {});
    return { calls, result };
  }

  it('covers every attempt: request 100 ms with per-try 30 ms gives 504 after the fourth attempt', async () => {
    const ctx = testContext({
      target: testTarget({
        timeouts: { requestMs: 100, perTryMs: 30 },
        retry: { attempts: 10, retryOn: ['5xx'] },
      }),
    });
    const { calls, result } = stack([hang], ctx);
    await vi.advanceTimersByTimeAsync(99);
    expect(calls).toHaveLength(4); // at 0, 30, 60 and 90 ms
    await vi.advanceTimersByTimeAsync(1);
    await expect(result).rejects.toMatchObject({
      reason: 'upstream_request_timeout',
      message: expect.stringMatching(/^upstream_response_timeout/),
    });
    expect(calls[3]!.req.signal?.aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(calls).toHaveLength(4); // no retry after the route timeout
  });

  it('has no timeout when none is configured (Istio default)', async () => {
    const { result } = stack([hang], testContext({ target: testTarget() }));
    let settled = false;
    result.then(
      () => (settled = true),
      () => (settled = true),
    );
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(settled).toBe(false);
  });

  it('uses the grpc-timeout header when it is shorter than the route timeout', async () => {
    const ctx = testContext({
      grpc: true,
      headers: { 'grpc-timeout': '50m' },
      target: testTarget({ timeouts: { requestMs: 100 } }),
    });
    const { result } = stack([hang], ctx);
    await vi.advanceTimersByTimeAsync(50);
    await expect(result).rejects.toMatchObject({
      reason: 'upstream_request_timeout',
      message: expect.stringMatching(/^grpc_deadline_exceeded/),
    });
  });

  it('uses the route timeout when it is shorter than grpc-timeout, and grpc-timeout alone without one', async () => {
    const ctx = testContext({
      grpc: true,
      headers: { 'grpc-timeout': '5S' },
      target: testTarget({ timeouts: { requestMs: 100 } }),
    });
    const a = stack([hang], ctx);
    await vi.advanceTimersByTimeAsync(100);
    await expect(a.result).rejects.toMatchObject({
      message: expect.stringMatching(/^upstream_response_timeout/),
    });

    const b = stack([hang], testContext({ grpc: true, headers: { 'grpc-timeout': '1S' } }));
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(b.result).rejects.toMatchObject({
      message: expect.stringMatching(/^grpc_deadline_exceeded/),
    });
  });

  it('ignores grpc-timeout on non-gRPC requests', async () => {
    const { result } = stack([hang], testContext({ headers: { 'grpc-timeout': '1m' } }));
    let settled = false;
    result.catch(() => (settled = true));
    await vi.advanceTimersByTimeAsync(10_000);
    expect(settled).toBe(false);
  });

  it('never applies the route timeout to upgrades', async () => {
    const { send } = scriptedSend([hang]);
    const ctx = testContext({ target: testTarget({ timeouts: { requestMs: 10 } }) });
    let settled = false;
    timeout()(send)({ ...testRequest(), protocol: 'upgrade' }, ctx).catch(() => (settled = true));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(settled).toBe(false);
  });

  it('aborts a response whose body outlives the route timeout', async () => {
    let release!: () => void;
    const hold = new Promise<void>((r) => {
      release = r;
    });
    const res = fakeResponse(200, { body: 'partial', hold });
    const ctx = testContext({ target: testTarget({ timeouts: { requestMs: 100 } }) });
    const { send } = scriptedSend([res]);
    const timed = await timeout()(send)(testRequest(), ctx);
    const { sink, out } = collectingSink();
    const streamed = timed.stream(sink);
    streamed.catch(() => {});
    await vi.advanceTimersByTimeAsync(100);
    await expect(streamed).rejects.toMatchObject({ reason: 'upstream_request_timeout' });
    expect(out.aborted).toBeDefined();
    expect(out.ended).toBe(false);
    expect(res.discarded).toBe(true);
    release();
  });

  it('lets a gRPC stream outlive the route timeout once its head arrived', async () => {
    let release!: () => void;
    const hold = new Promise<void>((r) => {
      release = r;
    });
    const ctx = testContext({ grpc: true, target: testTarget({ timeouts: { requestMs: 100 } }) });
    const { send } = scriptedSend([fakeResponse(200, { body: 'msg', hold })]);
    const timed = await timeout()(send)(testRequest(), ctx);
    const { sink, out } = collectingSink();
    const streamed = timed.stream(sink);
    await vi.advanceTimersByTimeAsync(10_000);
    release();
    await streamed;
    expect(out.ended).toBe(true);
    expect(out.aborted).toBeUndefined();
  });

  it('resets a stream idle for idleMs, and keeps it while bytes flow', async () => {
    const ctx = testContext({ target: testTarget({ timeouts: { idleMs: 50 } }) });
    const { result } = stack([hang], ctx);
    await vi.advanceTimersByTimeAsync(50);
    await expect(result).rejects.toMatchObject({ message: expect.stringMatching(/^stream_idle_timeout/) });

    let push!: (c: string) => void;
    const res = fakeResponse(200);
    const chatty = {
      ...res,
      stream: (s: Parameters<typeof res.stream>[0]) =>
        new Promise<void>((resolve) => {
          push = (c) => {
            if (c === 'end') {
              s.end(undefined);
              resolve();
            } else s.write(Buffer.from(c));
          };
        }),
    };
    const { send } = scriptedSend([chatty as typeof res]);
    const timed = await timeout()(send)(testRequest(), ctx);
    const { sink, out } = collectingSink();
    const streamed = timed.stream(sink);
    for (let i = 0; i < 5; i++) {
      await vi.advanceTimersByTimeAsync(40);
      push('x');
    }
    push('end');
    await streamed;
    expect(out.chunks).toHaveLength(5);
    expect(out.aborted).toBeUndefined();
  });
});
