// Key sets for jwksUri rules: fetched on first use, cached (5 min by default, like Envoy's remote
// JWKS), shared by every snapshot of the process so a configuration reload does not refetch. A token
// whose kid is not in the cached set triggers one refetch, at most once per cooldown per URI. A
// fetch is bounded by the rule's timeout and by a size limit; concurrent requests share one fetch.
import { createLocalJWKSet, type JSONWebKeySet } from 'jose';

export type KeySet = ReturnType<typeof createLocalJWKSet>;

export interface JwksCacheOptions {
  /** How long a fetched set is used before it is fetched again. Default 5 min. */
  readonly cacheMs?: number;
  /** Minimum time between two fetches of one URI caused by an unknown kid. Default 30 s. */
  readonly cooldownMs?: number;
  /** Largest JWKS document accepted. Default 1 MiB. */
  readonly maxBytes?: number;
  readonly now?: () => number;
}

interface Entry {
  set: KeySet | undefined;
  fetchedAt: number;
  lastFetch: number;
  inflight: Promise<KeySet> | undefined;
  fetches: number;
}

export class JwksFetchError extends Error {}

/** Parses a JWKS document into a key set; throws when it is not one. */
export function keySetOf(text: string): KeySet {
  const parsed = JSON.parse(text) as JSONWebKeySet;
  return createLocalJWKSet(parsed);
}

export class JwksCache {
  readonly #entries = new Map<string, Entry>();
  readonly #cacheMs: number;
  readonly #cooldownMs: number;
  readonly #maxBytes: number;
  readonly #now: () => number;

  constructor(opts: JwksCacheOptions = {}) {
    this.#cacheMs = opts.cacheMs ?? 5 * 60_000;
    this.#cooldownMs = opts.cooldownMs ?? 30_000;
    this.#maxBytes = opts.maxBytes ?? 1 << 20;
    this.#now = opts.now ?? Date.now;
  }

  /** Fetches made for uri so far (successful or not). */
  fetchCount(uri: string): number {
    return this.#entries.get(uri)?.fetches ?? 0;
  }

  #entry(uri: string): Entry {
    let e = this.#entries.get(uri);
    if (!e) {
      e = { set: undefined, fetchedAt: 0, lastFetch: -Infinity, inflight: undefined, fetches: 0 };
      this.#entries.set(uri, e);
    }
    return e;
  }

  /** The cached set, fetched when absent or stale. Rejects with JwksFetchError when the fetch fails. */
  async keys(uri: string, timeoutMs: number): Promise<KeySet> {
    const e = this.#entry(uri);
    if (e.set && this.#now() - e.fetchedAt < this.#cacheMs) return e.set;
    if (e.inflight) return e.inflight;
    // A failing server is asked again only after the cooldown; until then a stale set is used,
    // or the request fails fast.
    if (this.#now() - e.lastFetch < this.#cooldownMs) {
      if (e.set) return e.set;
      throw new JwksFetchError(`GET ${uri}: failed recently`);
    }
    try {
      return await this.#fetch(uri, e, timeoutMs);
    } catch (err) {
      if (e.set) return e.set;
      throw err;
    }
  }

  /**
   * A fresh set after a token named a kid the cached set lacks, or undefined when the cooldown
   * forbids a fetch now or the fetch fails (the caller keeps the answer it has).
   */
  async refresh(uri: string, timeoutMs: number): Promise<KeySet | undefined> {
    const e = this.#entry(uri);
    if (!e.inflight && this.#now() - e.lastFetch < this.#cooldownMs) return undefined;
    return this.#fetch(uri, e, timeoutMs).catch(() => undefined);
  }

  #fetch(uri: string, e: Entry, timeoutMs: number): Promise<KeySet> {
    if (e.inflight) return e.inflight;
    e.lastFetch = this.#now();
    e.fetches++;
    const p = this.#download(uri, timeoutMs).then(
      (set) => {
        e.set = set;
        e.fetchedAt = this.#now();
        e.inflight = undefined;
        return set;
      },
      (err: unknown) => {
        e.inflight = undefined;
        throw err instanceof JwksFetchError ? err : new JwksFetchError(String(err));
      },
    );
    e.inflight = p;
    return p;
  }

  async #download(uri: string, timeoutMs: number): Promise<KeySet> {
    const res = await fetch(uri, {
      signal: AbortSignal.timeout(timeoutMs),
      headers: { accept: 'application/json' },
      redirect: 'follow',
    });
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new JwksFetchError(`GET ${uri}: status ${res.status}`);
    }
    const declared = Number(res.headers.get('content-length') ?? '0');
    if (declared > this.#maxBytes) {
      await res.body?.cancel();
      throw new JwksFetchError(`GET ${uri}: ${declared} bytes is over the limit`);
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of res.body ?? []) {
      size += chunk.length;
      if (size > this.#maxBytes) throw new JwksFetchError(`GET ${uri}: over ${this.#maxBytes} bytes`);
      chunks.push(chunk);
    }
    return keySetOf(Buffer.concat(chunks).toString('utf8'));
  }
}
