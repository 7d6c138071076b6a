// GlobalStore against a real redis-server: exact counts, and a Redis that stops answering
// (frozen with SIGSTOP) costs a request at most one short command timeout, then nothing once the circuit
// breaker is open, and counting resumes after the pause through a half-open probe.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observe/logger.ts';
import { eventually } from '../../test/helpers/mesh.ts';
import { RedisServer } from '../../test/helpers/redis.ts';
import { GlobalStore, redact } from './global.ts';
import type { RateLimitRule } from './model.ts';

const rule = (requests: number, index = 0): RateLimitRule => ({
  policy: 'shop/global',
  type: 'Global',
  index,
  selectors: [],
  scope: 'Replica',
  configuredRequests: requests,
  replicas: 1,
  requests,
  unit: 'Hour',
  shared: false,
  headers: false,
});

const warnings: string[] = [];
const log = createLogger('warn', (line) => {
  warnings.push((JSON.parse(line) as { msg: string }).msg);
});

let redis: RedisServer;
let store: GlobalStore;
let admin: Redis;

beforeAll(async () => {
  redis = await RedisServer.start();
  store = new GlobalStore({
    url: redis.url,
    log,
    // Room for a busy CI machine (load average 11 took more than 250 ms once): a healthy command
    // must never time out here.
    commandTimeoutMs: 1_000,
    breakerResetMs: 300,
    logEveryMs: 60_000,
  });
  admin = new Redis(redis.url);
  await eventually(() => store.ready, 'the store to connect');
});
afterAll(async () => {
  await store.close();
  admin.disconnect();
  await redis.stop();
});

describe('GlobalStore', () => {
  it('counts exactly in Redis, under the documented key', async () => {
    const r = rule(3);
    const got = [];
    for (let i = 0; i < 4; i++) got.push(await store.consume(r, 'k1'));
    expect(got.map((d) => d?.allowed)).toEqual([true, true, true, false]);
    expect(got.map((d) => d?.remaining)).toEqual([2, 1, 0, 0]);
    expect(await admin.get('waypoint-rl:k1')).toBe('4');
    const ttl = await admin.ttl('waypoint-rl:k1');
    expect(ttl).toBeGreaterThan(3500);
  });

  it('does not hang on a Redis that stops answering: fails fast, opens the breaker, recovers', async () => {
    const r = rule(100, 1);
    expect((await store.consume(r, 'k2'))?.allowed).toBe(true);
    // Frozen until the test thaws it: a call that waited for Redis instead of timing out would
    // never return, and fail the test by its timeout.
    redis.freeze();
    // Once half of the recent calls failed, the breaker opens.
    for (let i = 0; i < 12 && store.breakerState !== 'open'; i++) {
      expect(await store.consume(r, 'k2')).toBeUndefined();
    }
    expect(store.breakerState).toBe('open');
    expect(warnings).toContain('rate-limit: redis unavailable');
    // Open breaker: answered without touching Redis.
    expect(await store.consume(r, 'k2')).toBeUndefined();
    // Once Redis answers again a half-open probe succeeds and counting resumes.
    redis.thaw();
    const back = await eventually(
      async () => (await store.consume(r, 'k2')) ?? false,
      'counting to resume',
      10_000,
    );
    expect(back.allowed).toBe(true);
    expect(store.breakerState).toBe('closed');
  });

  it('keeps passwords out of logs', () => {
    expect(redact('redis://user:secret@127.0.170.1:6379/2')).toBe('redis://user:***@127.0.170.1:6379/2');
  });
});
