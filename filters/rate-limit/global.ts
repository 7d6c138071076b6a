// One budget across every replica: counters in Redis (rate-limiter-flexible's RateLimiterRedis, an
// atomic INCR + EXPIRE script per request) behind an opossum circuit breaker. A request never waits
// on a sick Redis: commands time out after commandTimeoutMs, nothing queues while disconnected,
// and once the breaker opens requests take the failure mode at once until a half-open probe
// succeeds. Failures are counted and logged at most once per logEveryMs, never thrown.
import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import type CircuitBreaker from 'opossum';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import type { Logger } from '../../src/observe/logger.ts';
import { consume, type Decision, limiterId } from './local.ts';
import { type RateLimitRule, UNIT_SECONDS } from './model.ts';

// Loaded when a store is made (a Global limit with --redis-url): ioredis and opossum weigh ~20 MB
// of RSS that a waypoint without Redis should not carry.
const load = createRequire(import.meta.url);

export type FailureMode = 'open' | 'closed';

export interface GlobalStoreOptions {
  /** `redis://host:port[/db]`. */
  readonly url: string;
  readonly log: Logger;
  /** Per-command timeout. Default 100 ms. */
  readonly commandTimeoutMs?: number;
  /** How long the breaker stays open before a half-open probe. Default 2 s. */
  readonly breakerResetMs?: number;
  /** Minimum interval between two "Redis failing" log lines. Default 10 s. */
  readonly logEveryMs?: number;
}

/** Prefix of every key this waypoint writes (see README: key layout). */
export const KEY_PREFIX = 'waypoint-rl';

export class GlobalStore {
  readonly #log: Logger;
  readonly #client: Redis;
  readonly #breaker: CircuitBreaker<[RateLimiterRedis, RateLimitRule, string], Decision>;
  readonly #limiters = new Map<string, RateLimiterRedis>();
  readonly #logEveryMs: number;
  readonly #connectTimeoutMs: number;
  #lastLog = 0;
  #suppressed = 0;
  #everReady = false;
  #closed = false;
  readonly #startedAt = Date.now();

  constructor(opts: GlobalStoreOptions) {
    this.#log = opts.log;
    this.#logEveryMs = opts.logEveryMs ?? 10_000;
    const commandTimeout = opts.commandTimeoutMs ?? 100;
    this.#connectTimeoutMs = 500;
    const RedisClient = (load('ioredis') as typeof import('ioredis')).Redis;
    const Breaker = load('opossum') as typeof CircuitBreaker;
    this.#client = new RedisClient(opts.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout,
      connectTimeout: this.#connectTimeoutMs,
      // Keep trying to reconnect, never faster than every 100 ms nor slower than every second.
      retryStrategy: (times) => Math.min(100 * times, 1_000),
    });
    // An 'error' event without a listener would crash the process.
    this.#client.on('error', (err: Error) => this.#failed(`redis: ${err.message}`));
    this.#client.on('ready', () => {
      this.#log.info(this.#everReady ? 'rate-limit: redis reachable again' : 'rate-limit: redis ready', {
        url: redact(opts.url),
      });
      this.#everReady = true;
    });
    this.#breaker = new Breaker(
      (limiter: RateLimiterRedis, rule: RateLimitRule, key: string) => consume(limiter, rule, key),
      {
        timeout: commandTimeout * 2,
        errorThresholdPercentage: 50,
        volumeThreshold: 3,
        resetTimeout: opts.breakerResetMs ?? 2_000,
        rollingCountTimeout: 10_000,
      },
    );
    this.#breaker.on('open', () =>
      this.#log.warn('rate-limit: redis circuit open; global limits take the failure mode until it recovers'),
    );
    this.#breaker.on('close', () => this.#log.info('rate-limit: redis circuit closed'));
  }

  /** True once connected (tests and the first requests after start wait for it briefly). */
  get ready(): boolean {
    return this.#client.status === 'ready';
  }

  get breakerState(): 'open' | 'half-open' | 'closed' {
    return this.#breaker.opened ? 'open' : this.#breaker.halfOpen ? 'half-open' : 'closed';
  }

  /** Counts one request; undefined when Redis could not answer (the caller applies the failure mode). */
  async consume(rule: RateLimitRule, key: string): Promise<Decision | undefined> {
    if (!this.#everReady) await this.#firstConnect();
    try {
      return await this.#breaker.fire(this.#limiter(rule), rule, key);
    } catch (err) {
      this.#failed((err as Error).message);
      return undefined;
    }
  }

  /** Drops the limiters of rules no longer configured (the counters in Redis expire on their own). */
  retain(rules: Iterable<RateLimitRule>): void {
    const keep = new Set<string>();
    for (const r of rules) keep.add(limiterId(r));
    for (const id of this.#limiters.keys()) if (!keep.has(id)) this.#limiters.delete(id);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#breaker.shutdown();
    this.#client.disconnect();
  }

  #limiter(rule: RateLimitRule): RateLimiterRedis {
    const id = limiterId(rule);
    let l = this.#limiters.get(id);
    if (!l) {
      l = new RateLimiterRedis({
        storeClient: this.#client,
        points: Math.max(1, rule.requests),
        duration: UNIT_SECONDS[rule.unit],
        keyPrefix: KEY_PREFIX,
        rejectIfRedisNotReady: true,
      });
      this.#limiters.set(id, l);
    }
    return l;
  }

  /** Right after start (only then), waits briefly for the first connection instead of failing at once. */
  async #firstConnect(): Promise<void> {
    const left = this.#startedAt + this.#connectTimeoutMs - Date.now();
    if (this.ready || this.#closed || left <= 0) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#client.off('ready', done);
        resolve();
      };
      const timer = setTimeout(done, left);
      this.#client.once('ready', done);
    });
  }

  #failed(why: string): void {
    if (this.#closed) return;
    const now = Date.now();
    if (now - this.#lastLog < this.#logEveryMs) {
      this.#suppressed++;
      return;
    }
    this.#log.warn('rate-limit: redis unavailable', {
      error: why,
      breaker: this.breakerState,
      suppressed: this.#suppressed,
    });
    this.#lastLog = now;
    this.#suppressed = 0;
  }
}

/** The URL without its password, for logs. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}
