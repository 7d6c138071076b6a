import { Readable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ProxyError } from '../pipeline/proxy-error.ts';
import { backoffMs, matchesError, PER_TRY_DETAIL, retriedResetBody, retry, retryState } from './retry.ts';
import { NO_RETRY, type RetryPolicy } from './target.ts';
import {
  fakeResponse,
  hang,
  type Step,
  scriptedSend,
  testContext,
  testRequest,
  testTarget,
} from './test-support.ts';

const noSleep = { sleep: () => Promise.resolve(), random: () => 0 };

function run(steps: Step[], policy: Partial<RetryPolicy>, opts: Parameters<typeof retry>[0] = noSleep) {
  const { send, calls } = scriptedSend(steps);
  const ctx = testContext({ target: testTarget({ retry: policy }) });
  const req = testRequest();
  return { calls, ctx, req, result: retry(opts)(send)(req, ctx) };
}

const connectFailure = () =>
  new ProxyError('upstream_connect_failure', 'HBONE to 10.0.0.1: refused', { retryable: true });
const refusedStream = () =>
  new ProxyError(
    'upstream_connect_failure',
    'HTTP/2 to 10.0.0.1:8080: stream closed before response (code 7)',
    {
      retryable: true,
      refusedStream: true,
    },
  );
const remoteReset = () =>
  new ProxyError('upstream_remote_reset', 'HTTP/1.1 to 10.0.0.1:8080: socket hang up');

describe('retry layer: counting and the final response', () => {
  it('retries a 503 listed in retriable-status-codes twice and hands back the last 503 (URX)', async () => {
    const responses = [fakeResponse(503), fakeResponse(503), fakeResponse(503)];
    const { calls, ctx, result } = run(responses, {
      attempts: 2,
      retryOn: ['retriable-status-codes'],
      retriableStatusCodes: [503],
    });
    const res = await result;
    expect(calls).toHaveLength(3);
    expect(res.status).toBe(503);
    expect(responses[0]!.discarded).toBe(true);
    expect(responses[1]!.discarded).toBe(true);
    expect(responses[2]!.discarded).toBe(false);
    expect(retryState(ctx)).toMatchObject({ retries: 2, exhausted: true });
  });

  it('stops at the first success and does not flag exhaustion', async () => {
    const { calls, ctx, result } = run([fakeResponse(503), fakeResponse(200)], {
      attempts: 3,
      retryOn: ['5xx'],
    });
    expect((await result).status).toBe(200);
    expect(calls).toHaveLength(2);
    expect(retryState(ctx)).toMatchObject({ retries: 1, exhausted: false });
  });

  it('does not retry with attempts 0', async () => {
    const { calls, result } = run([fakeResponse(503), fakeResponse(200)], { attempts: 0, retryOn: ['5xx'] });
    expect((await result).status).toBe(503);
    expect(calls).toHaveLength(1);
  });

  it('rethrows the last reset after retries, with Envoy\'s "retried and the latest reset reason" body', async () => {
    const { calls, ctx, result } = run([remoteReset()], { attempts: 2, retryOn: ['reset'] });
    await expect(result).rejects.toMatchObject({ reason: 'upstream_remote_reset' });
    expect(calls).toHaveLength(3);
    expect(retryState(ctx)).toMatchObject({ retries: 2, exhausted: true });
    expect(
      retriedResetBody(
        'upstream connect error or disconnect/reset before headers. reset reason: remote reset',
      ),
    ).toBe(
      'upstream connect error or disconnect/reset before headers. retried and the latest reset reason: remote reset',
    );
  });
});

describe('retry layer: retryOn tokens on response heads', () => {
  const cases: Array<[string, number, Record<string, string>, boolean]> = [
    ['5xx', 500, {}, true],
    ['5xx', 404, {}, false],
    ['gateway-error', 502, {}, true],
    ['gateway-error', 503, {}, true],
    ['gateway-error', 504, {}, true],
    ['gateway-error', 500, {}, false],
    ['retriable-4xx', 409, {}, true],
    ['retriable-4xx', 400, {}, false],
    ['envoy-ratelimited', 429, { 'x-envoy-ratelimited': 'true' }, true],
    ['envoy-ratelimited', 429, {}, false],
    ['cancelled', 200, { 'grpc-status': '1' }, true],
    ['deadline-exceeded', 200, { 'grpc-status': '4' }, true],
    ['resource-exhausted', 200, { 'grpc-status': '8' }, true],
    ['internal', 200, { 'grpc-status': '13' }, true],
    ['unavailable', 200, { 'grpc-status': '14' }, true],
    ['unavailable', 200, { 'grpc-status': '0' }, false],
    ['connect-failure', 503, {}, false],
  ];
  it.each(cases)('%s with status %i %j → retried: %s', async (token, status, headers, retried) => {
    const { calls, result } = run([fakeResponse(status, { headers }), fakeResponse(200)], {
      attempts: 1,
      retryOn: [token],
    });
    expect((await result).status).toBe(retried ? 200 : status);
    expect(calls).toHaveLength(retried ? 2 : 1);
  });

  it('retriable-status-codes retries only the listed codes', async () => {
    const policy = { attempts: 1, retryOn: ['retriable-status-codes'], retriableStatusCodes: [418] };
    expect((await run([fakeResponse(418), fakeResponse(200)], policy).result).status).toBe(200);
    expect((await run([fakeResponse(503), fakeResponse(200)], policy).result).status).toBe(503);
  });
});

describe('retry layer: retryOn tokens on failures', () => {
  const cases: Array<[string, () => ProxyError, boolean]> = [
    ['connect-failure', connectFailure, true],
    ['connect-failure', refusedStream, false],
    ['connect-failure', remoteReset, false],
    ['refused-stream', refusedStream, true],
    ['refused-stream', connectFailure, false],
    ['reset', remoteReset, true],
    ['reset', () => new ProxyError('upstream_connection_termination', 'closed'), true],
    ['reset', connectFailure, true],
    ['5xx', remoteReset, true],
    ['5xx', () => new ProxyError('upstream_protocol_error', 'bad'), true],
    ['gateway-error', connectFailure, true],
    ['reset-before-request', connectFailure, true],
    ['reset-before-request', remoteReset, false], // may have reached the application
    ['reset-before-request', () => new ProxyError('upstream_remote_reset', 'x', { retryable: true }), true],
    ['unavailable', connectFailure, false],
    ['5xx', () => new ProxyError('upstream_overflow', 'max requests'), false],
    ['5xx', () => new ProxyError('no_healthy_upstream', 'none'), false],
    ['5xx', () => new ProxyError('internal_error', 'bug', { side: 'internal' }), false],
  ];
  it.each(cases)('%s, failure #%#, → retried: %s', async (token, failure, retried) => {
    const { calls, result } = run([failure(), fakeResponse(200)], { attempts: 1, retryOn: [token] });
    if (retried) expect((await result).status).toBe(200);
    else await expect(result).rejects.toBeInstanceOf(ProxyError);
    expect(calls).toHaveLength(retried ? 2 : 1);
  });

  it('retries a per-try timeout only with 5xx, gateway-error or reset', () => {
    const err = new ProxyError('upstream_request_timeout', `${PER_TRY_DETAIL}: 30 ms`);
    expect(matchesError(['5xx'], err)).toBe(true);
    expect(matchesError(['reset'], err)).toBe(true);
    expect(matchesError(['connect-failure', 'refused-stream', 'reset-before-request'], err)).toBe(false);
  });
});

describe('retry layer: back-off', () => {
  it('waits uniformly in [0, (2^N − 1)·base), capped at 10·base', () => {
    const top = () => 0.999_999;
    expect(backoffMs(1, 25, top)).toBe(24);
    expect(backoffMs(2, 25, top)).toBe(74);
    expect(backoffMs(3, 25, top)).toBe(174);
    expect(backoffMs(4, 25, top)).toBe(249); // (2^4 − 1)·25 = 375, capped at 250
    expect(backoffMs(10, 100, top)).toBe(999);
    expect(backoffMs(3, 25, () => 0)).toBe(0);
    expect(backoffMs(2, 25, () => 0.5)).toBe(37);
  });

  it('sleeps before each retry with the policy base', async () => {
    const waits: number[] = [];
    const { result } = run(
      [fakeResponse(503)],
      { attempts: 3, retryOn: ['5xx'], backoffBaseMs: 10 },
      {
        random: () => 0.5,
        sleep: (ms) => {
          waits.push(ms);
          return Promise.resolve();
        },
      },
    );
    await result;
    expect(waits).toEqual([5, 15, 35]);
  });

  it('stops when the client goes away during back-off', async () => {
    const client = new AbortController();
    const { send, calls } = scriptedSend([fakeResponse(503)]);
    const ctx = testContext({
      target: testTarget({ retry: { attempts: 3, retryOn: ['5xx'] } }),
      signal: client.signal,
    });
    const result = retry({
      random: () => 0,
      sleep: (_ms, signal) =>
        new Promise((_r, reject) => {
          signal.addEventListener('abort', () => reject(signal.reason));
          client.abort();
        }),
    })(send)(testRequest(), ctx);
    await expect(result).rejects.toMatchObject({ reason: 'downstream_reset' });
    expect(calls).toHaveLength(1);
  });
});

describe('retry layer: endpoints', () => {
  it('excludes the hosts already tried when avoidPreviousHosts is set', async () => {
    const { calls, result, req } = run([connectFailure(), connectFailure(), fakeResponse(200)], {
      attempts: 2,
      retryOn: ['connect-failure'],
      avoidPreviousHosts: true,
    });
    await result;
    expect(calls[0]!.req.excludeHosts).toBeUndefined();
    expect([...(calls[1]!.req.excludeHosts ?? [])]).toEqual(['10.0.0.1:8080']);
    expect([...(calls[2]!.req.excludeHosts ?? [])]).toEqual(['10.0.0.1:8080', '10.0.0.2:8080']);
    // The engine's request learns the endpoint that answered.
    expect(req.endpoint?.ip).toBe('10.0.0.3');
  });

  it('may retry the same hosts when avoidPreviousHosts is off', async () => {
    const { calls, result } = run([connectFailure(), fakeResponse(200)], {
      attempts: 1,
      retryOn: ['connect-failure'],
      avoidPreviousHosts: false,
    });
    await result;
    expect(calls[1]!.req.excludeHosts).toBeUndefined();
  });
});

describe('retry layer: request bodies', () => {
  it('replays a small body identically on every attempt and counts its bytes once', async () => {
    const { send, calls } = scriptedSend([fakeResponse(503), fakeResponse(503), fakeResponse(200)]);
    const ctx = testContext({ target: testTarget({ retry: { attempts: 2, retryOn: ['5xx'] } }) });
    const req = testRequest({ body: Readable.from([Buffer.from('hello '), Buffer.from('world')]) });
    expect((await retry(noSleep)(send)(req, ctx)).status).toBe(200);
    expect(calls).toHaveLength(3);
    expect(await Promise.all(calls.map((c) => c.body))).toEqual([
      'hello world',
      'hello world',
      'hello world',
    ]);
    expect(req.counted).toBe('hello world'.length);
  });

  it('streams a body over the replay cap once and does not retry it', async () => {
    const { send, calls } = scriptedSend([fakeResponse(503), fakeResponse(200)]);
    const ctx = testContext({ target: testTarget({ retry: { attempts: 2, retryOn: ['5xx'] } }) });
    const big = Array.from({ length: 10 }, () => Buffer.alloc(10, 'x'));
    const req = testRequest({ body: Readable.from(big) });
    const res = await retry({ ...noSleep, maxReplayBytes: 32 })(send)(req, ctx);
    expect(res.status).toBe(503);
    expect(calls).toHaveLength(1);
    expect((await calls[0]!.body)!.length).toBe(100);
    expect(retryState(ctx)).toMatchObject({ retries: 0, skipped: 'retry_skipped_body_too_large' });
    expect(ctx.explain.join('\n')).toMatch(/replay buffer/);
  });

  it('does not buffer a body whose content-length is over the cap', async () => {
    const { send, calls } = scriptedSend([fakeResponse(503), fakeResponse(200)]);
    const ctx = testContext({ target: testTarget({ retry: { attempts: 2, retryOn: ['5xx'] } }) });
    const source = Readable.from([Buffer.alloc(100, 'y')]);
    const req = testRequest({ body: source, headers: { 'content-length': '100' } });
    expect((await retry({ ...noSleep, maxReplayBytes: 32 })(send)(req, ctx)).status).toBe(503);
    expect(calls[0]!.req.body).toBe(source);
  });
  it('hands an upgrade its own byte stream, never a replay copy (the transport reads it after 101)', async () => {
    const { send, calls } = scriptedSend([connectFailure(), fakeResponse(101)], { readBody: false });
    const ctx = testContext({ target: testTarget({ retry: { attempts: 2, retryOn: ['connect-failure'] } }) });
    const source = new Readable({ read() {} });
    const req = { ...testRequest({ body: source }), protocol: 'upgrade' as const };
    expect((await retry(noSleep)(send)(req, ctx)).status).toBe(101);
    expect(calls.map((c) => c.req.body)).toEqual([source, source]);
  });
});

describe('retry layer: retry limit and budget', () => {
  it('hands back the retriable response (UO) when the cluster refuses another retry', async () => {
    const acquired: string[] = [];
    const breakers = {
      tryAcquireRetry: (cluster: { name: string }) => {
        acquired.push(cluster.name);
        return 'overflow' as const;
      },
    };
    const { calls, ctx, result } = run(
      [fakeResponse(503), fakeResponse(200)],
      { attempts: 2, retryOn: ['5xx'] },
      {
        ...noSleep,
        breakers,
      },
    );
    expect((await result).status).toBe(503);
    expect(calls).toHaveLength(1);
    expect(acquired).toHaveLength(1);
    expect(retryState(ctx)).toMatchObject({ overflow: true, retries: 0 });
  });

  it('holds one retry slot per retry until its attempt settles', async () => {
    let held = 0;
    let max = 0;
    const breakers = {
      tryAcquireRetry: () => {
        held++;
        max = Math.max(max, held);
        return () => {
          held--;
        };
      },
    };
    const { result } = run(
      [fakeResponse(503), fakeResponse(503), fakeResponse(200)],
      { attempts: 2, retryOn: ['5xx'] },
      {
        ...noSleep,
        breakers,
      },
    );
    await result;
    expect(max).toBe(1);
    expect(held).toBe(0);
  });
});

describe('retry layer: defaults without a route', () => {
  it('retries reset-before-request twice when there is no target', async () => {
    const { send, calls } = scriptedSend([connectFailure(), connectFailure(), fakeResponse(200)]);
    const res = await retry(noSleep)(send)(testRequest(), testContext());
    expect(res.status).toBe(200);
    expect(calls).toHaveLength(3);
  });

  it('never retries a failure that may have reached the application, nor a 503, by default', async () => {
    const a = scriptedSend([remoteReset(), fakeResponse(200)]);
    await expect(retry(noSleep)(a.send)(testRequest(), testContext())).rejects.toBeInstanceOf(ProxyError);
    expect(a.calls).toHaveLength(1);
    const b = scriptedSend([fakeResponse(503), fakeResponse(200)]);
    expect((await retry(noSleep)(b.send)(testRequest(), testContext())).status).toBe(503);
  });

  it('does not retry gRPC requests without a target', async () => {
    const { send, calls } = scriptedSend([connectFailure(), fakeResponse(200)]);
    await expect(retry(noSleep)(send)(testRequest(), testContext({ grpc: true }))).rejects.toBeInstanceOf(
      ProxyError,
    );
    expect(calls).toHaveLength(1);
  });
});

describe('retry layer: per-try timeout', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('aborts each attempt after perTryMs and retries it under 5xx', async () => {
    vi.useFakeTimers();
    const { send, calls } = scriptedSend([hang, hang, fakeResponse(200)]);
    const ctx = testContext({
      target: testTarget({ retry: { attempts: 2, retryOn: ['5xx'] }, timeouts: { perTryMs: 30 } }),
    });
    const result = retry(noSleep)(send)(testRequest(), ctx);
    await vi.advanceTimersByTimeAsync(29);
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls[0]!.req.signal?.aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(30);
    expect((await result).status).toBe(200);
    expect(calls).toHaveLength(3);
  });

  it('gives 504 upstream_per_try_timeout when the policy does not retry timeouts', async () => {
    vi.useFakeTimers();
    const { send, calls } = scriptedSend([hang]);
    const ctx = testContext({
      target: testTarget({
        retry: { attempts: 2, retryOn: ['connect-failure'] },
        timeouts: { perTryMs: 30 },
      }),
    });
    const result = retry(noSleep)(send)(testRequest(), ctx);
    const settled = expect(result).rejects.toMatchObject({
      reason: 'upstream_request_timeout',
      message: expect.stringMatching(/^upstream_per_try_timeout/),
    });
    await vi.advanceTimersByTimeAsync(30);
    await settled;
    expect(calls).toHaveLength(1);
  });
});

describe('the policy the route carries', () => {
  const unavailable = () => fakeResponse(200, { headers: { 'grpc-status': '14' } });
  // Istio's mesh default and its `--default-retry safe` form (filters/routing/defaults.ts).
  const connectErrors = ['connect-failure', 'refused-stream'];
  const meshDefault = { ...NO_RETRY, attempts: 2, retryOn: [...connectErrors, 'unavailable', 'cancelled'] };
  const safe = { ...meshDefault, retryOn: connectErrors };
  async function attempts(policy: RetryPolicy, step: () => Step): Promise<number> {
    const { send, calls } = scriptedSend([step(), step(), step()]);
    const ctx = testContext({ target: { ...testTarget(), retry: policy } });
    await retry(noSleep)(send)(testRequest(), ctx).catch(() => undefined);
    return calls.length;
  }

  it('the mesh default retries a gRPC UNAVAILABLE the application sent', async () => {
    expect(await attempts(meshDefault, unavailable)).toBe(3);
  });

  it('the safe default retries only what never reached the application', async () => {
    expect(await attempts(safe, unavailable)).toBe(1);
    expect(await attempts(safe, connectFailure)).toBe(3);
  });
});
