// Per-replica buckets (rate-limiter-flexible's RateLimiterMemory): one limiter per rule and limit,
// kept across snapshots so that an unrelated config reload does not hand every client a fresh
// budget. A limiter whose rule left the configuration is dropped at the next snapshot.
// Under `run --concurrency N` the buckets are the primary's, shared by every worker
// (src/workers/shared-buckets.ts), so N workers admit what one process would.
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { consumeShared } from '../../src/workers/worker-link.ts';
import { type RateLimitRule, UNIT_SECONDS } from './model.ts';

/** The outcome of counting one request against one bucket. */
export interface Decision {
  readonly allowed: boolean;
  readonly limit: number;
  readonly remaining: number;
  /** Seconds until the window resets (at least 1). */
  readonly resetSeconds: number;
  readonly windowSeconds: number;
}

/** Identity of a rule's limiter: the same rule with another limit starts afresh. */
export function limiterId(rule: RateLimitRule): string {
  return `${rule.policy}:${rule.type}:${rule.index}:${rule.requests}/${rule.unit}`;
}

/** A rejection from rate-limiter-flexible is a RateLimiterRes (over the limit), anything else an error. */
export function decisionOf(
  rule: RateLimitRule,
  res: Pick<RateLimiterRes, 'remainingPoints' | 'msBeforeNext'>,
  allowed: boolean,
): Decision {
  return {
    allowed,
    limit: rule.requests,
    remaining: Math.max(0, res.remainingPoints),
    resetSeconds: Math.max(1, Math.ceil(res.msBeforeNext / 1000)),
    windowSeconds: UNIT_SECONDS[rule.unit],
  };
}

export async function consume(
  limiter: { consume(key: string, points?: number): Promise<RateLimiterRes> },
  rule: RateLimitRule,
  key: string,
): Promise<Decision> {
  // A limit of 0 blocks everything; rate-limiter-flexible needs at least one point.
  if (rule.requests === 0)
    return {
      allowed: false,
      limit: 0,
      remaining: 0,
      resetSeconds: UNIT_SECONDS[rule.unit],
      windowSeconds: UNIT_SECONDS[rule.unit],
    };
  try {
    return decisionOf(rule, await limiter.consume(key), true);
  } catch (err) {
    if (err instanceof RateLimiterRes) return decisionOf(rule, err, false);
    throw err;
  }
}

export class LocalBuckets {
  readonly #limiters = new Map<string, RateLimiterMemory>();

  limiter(rule: RateLimitRule): RateLimiterMemory {
    const id = limiterId(rule);
    let l = this.#limiters.get(id);
    if (!l) {
      l = new RateLimiterMemory({
        points: Math.max(1, rule.requests),
        duration: UNIT_SECONDS[rule.unit],
        keyPrefix: 'waypoint-rl',
      });
      this.#limiters.set(id, l);
    }
    return l;
  }

  consume(rule: RateLimitRule, key: string): Promise<Decision> {
    const shared =
      rule.requests > 0
        ? consumeShared({
            limiter: limiterId(rule),
            points: rule.requests,
            durationSeconds: UNIT_SECONDS[rule.unit],
            key,
          })
        : undefined;
    if (!shared) return consume(this.limiter(rule), rule, key);
    // The primary is gone (this worker is draining): this process's own bucket decides.
    return shared.then(
      (a) => decisionOf(rule, a, a.allowed),
      () => consume(this.limiter(rule), rule, key),
    );
  }

  /** Drops the limiters of rules no longer configured. */
  retain(rules: Iterable<RateLimitRule>): void {
    const keep = new Set<string>();
    for (const r of rules) keep.add(limiterId(r));
    for (const id of this.#limiters.keys()) if (!keep.has(id)) this.#limiters.delete(id);
  }
}
