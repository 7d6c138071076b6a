// Capped exponential back-off with jitter, for reconnecting to the controller: many waypoints that
// lost the same controller must not come back in step.
export interface BackoffOptions {
  /** The first delay (default 500 ms). */
  readonly initialMs?: number;
  /** The cap (default 30 s). */
  readonly maxMs?: number;
  /** Each delay is drawn from [d × (1 − jitter), d] (default 0.2). */
  readonly jitter?: number;
  readonly random?: () => number;
}

export class Backoff {
  readonly #initial: number;
  readonly #max: number;
  readonly #jitter: number;
  readonly #random: () => number;
  #next: number;

  constructor(opts: BackoffOptions = {}) {
    this.#initial = opts.initialMs ?? 500;
    this.#max = opts.maxMs ?? 30_000;
    this.#jitter = opts.jitter ?? 0.2;
    this.#random = opts.random ?? Math.random;
    this.#next = this.#initial;
  }

  /** The delay before the next attempt; each call doubles the following one, up to the cap. */
  delay(): number {
    const d = this.#next;
    this.#next = Math.min(this.#max, d * 2);
    return Math.round(d * (1 - this.#jitter * this.#random()));
  }

  /** After a success: the next failure starts from the first delay again. */
  reset(): void {
    this.#next = this.#initial;
  }
}
