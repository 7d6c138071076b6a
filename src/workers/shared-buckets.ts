// The local rate-limit buckets of every worker, kept by the primary: a worker asks for each
// request (one IPC round trip), so N workers admit exactly what one process would, wherever the
// kernel put the connection. Envoy's local rate limit is likewise one bucket shared by its worker
// threads. A limiter unused for two of its windows is dropped (its buckets would be full again).
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';

export interface BucketRequest {
  /** Names the limiter (a rule and its limit): the same id always means the same points and window. */
  readonly limiter: string;
  readonly points: number;
  readonly durationSeconds: number;
  readonly key: string;
}

export interface BucketAnswer {
  readonly allowed: boolean;
  readonly remainingPoints: number;
  readonly msBeforeNext: number;
}

export class SharedBuckets {
  readonly #limiters = new Map<string, { limiter: RateLimiterMemory; usedAt: number; ttlMs: number }>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  async consume(r: BucketRequest): Promise<BucketAnswer> {
    const now = this.#now();
    this.#sweep(now);
    let entry = this.#limiters.get(r.limiter);
    if (!entry) {
      const limiter = new RateLimiterMemory({
        points: r.points,
        duration: r.durationSeconds,
        keyPrefix: 'w',
      });
      entry = { limiter, usedAt: now, ttlMs: 2_000 * r.durationSeconds };
      this.#limiters.set(r.limiter, entry);
    }
    entry.usedAt = now;
    try {
      return answer(await entry.limiter.consume(r.key), true);
    } catch (err) {
      if (err instanceof RateLimiterRes) return answer(err, false);
      throw err;
    }
  }

  get size(): number {
    return this.#limiters.size;
  }

  #sweep(now: number): void {
    for (const [id, e] of this.#limiters) if (now - e.usedAt > e.ttlMs) this.#limiters.delete(id);
  }
}

function answer(res: RateLimiterRes, allowed: boolean): BucketAnswer {
  return { allowed, remainingPoints: res.remainingPoints, msBeforeNext: res.msBeforeNext };
}
