// Load balancing: which of a cluster's candidate endpoints takes a request, per the
// DestinationRule's loadBalancer (l7-semantics.md §4.10). Outlier ejection and candidate filtering
// happen before this; exclusions (hosts a retry should avoid) are applied here.
//
// State that must outlive a snapshot (active-request counts, round-robin cursors) is keyed by
// `ip:port` and by cluster name, never by object identity. Consistent-hash tables are pure
// functions of the sorted `ip:port` set, so every waypoint replica maps a key to the same endpoint.
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Endpoint } from '../../config/model.ts';
import { formatAuthority } from '../hbone/authority.ts';
import type { HashKey, LoadBalancerPolicy } from './cluster.ts';

export const DEFAULT_RING_SIZE = 1024;
export const DEFAULT_MAGLEV_SIZE = 65537;
/** Envoy's ring hash upper bound (maximum_ring_size default). */
const MAX_RING_SIZE = 8 * 1024 * 1024;

/** What of the request a hash key may read. */
export interface HashInput {
  readonly headers: IncomingHttpHeaders;
  /** Path and query. */
  readonly path: string;
  readonly sourceIp: string;
}

export interface PickInput {
  /** Cluster name: keys the round-robin cursor and the hash-table cache. */
  readonly cluster: string;
  readonly policy: LoadBalancerPolicy;
  /** Endpoints allowed now (ready, not ejected). */
  readonly candidates: readonly Endpoint[];
  /** `ip:port` of hosts a retry should avoid (Envoy's previous_hosts); consistent hash ignores it. */
  readonly exclude?: ReadonlySet<string> | undefined;
  readonly request: HashInput;
}

export interface EndpointChoice {
  readonly endpoint: Endpoint;
  /** A `set-cookie` value to add to the response: the hash cookie Envoy generates when missing. */
  readonly setCookie?: string;
}

/** `ip:port` (`[v6]:port`), the same form as a response's upstreamHost, so the two compare. */
export function hostKey(e: { readonly ip: string; readonly port: number }): string {
  let key = hostKeys.get(e);
  if (key === undefined) {
    key = formatAuthority(e.ip, e.port);
    hostKeys.set(e, key);
  }
  return key;
}
/** Endpoints are immutable within a snapshot: each one's key is formatted once. */
const hostKeys = new WeakMap<object, string>();

interface HashTable {
  /** Endpoints sorted by `ip:port`: table entries index into it. */
  readonly hosts: readonly Endpoint[];
  lookup(hash: number): Endpoint;
}

export class LoadBalancer {
  readonly #active = new Map<string, number>();
  readonly #cursors = new Map<string, number>();
  /** Tables for a candidates array (stable per snapshot when nothing is ejected). */
  readonly #byArray = new WeakMap<readonly Endpoint[], Map<string, HashTable>>();
  /** Tables per cluster for ad-hoc candidate sets (some hosts ejected): keyed by the host set. */
  readonly #byCluster = new Map<string, { readonly signature: string; readonly table: HashTable }>();
  readonly #random: () => number;

  constructor(opts: { random?: () => number } = {}) {
    this.#random = opts.random ?? Math.random;
  }

  pick(input: PickInput): EndpointChoice | undefined {
    const { candidates, policy } = input;
    if (candidates.length === 0) return undefined;
    if (policy.kind === 'CONSISTENT_HASH') return this.#hashPick(input, policy);
    // A retry avoids the hosts already tried while others remain (Envoy makes up to 5 selection
    // attempts with previous_hosts, then accepts a previous host; filtering first is the same
    // outcome without the chance of five unlucky draws).
    let pool = candidates;
    if (input.exclude && input.exclude.size > 0) {
      const rest = candidates.filter((e) => !input.exclude!.has(hostKey(e)));
      if (rest.length > 0) pool = rest;
    }
    switch (policy.kind) {
      case 'ROUND_ROBIN':
        return { endpoint: this.#roundRobin(input.cluster, pool) };
      case 'RANDOM':
        return { endpoint: pool[Math.floor(this.#random() * pool.length)]! };
      default:
        return { endpoint: this.leastRequest(pool)! };
    }
  }

  /** Power of two choices: two distinct random endpoints, the one with fewer active requests. */
  leastRequest(candidates: readonly Endpoint[]): Endpoint | undefined {
    const n = candidates.length;
    if (n <= 1) return candidates[0];
    const a = candidates[Math.floor(this.#random() * n)]!;
    let b = candidates[Math.floor(this.#random() * (n - 1))]!;
    if (b === a) b = candidates[n - 1]!;
    const la = this.load(a);
    const lb = this.load(b);
    if (la !== lb) return la < lb ? a : b;
    return this.#random() < 0.5 ? a : b;
  }

  load(e: Endpoint): number {
    return this.#active.get(hostKey(e)) ?? 0;
  }

  /** Counts a request as active on e until the returned function is called (idempotent). */
  begin(e: Endpoint): () => void {
    const key = hostKey(e);
    this.#active.set(key, (this.#active.get(key) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = (this.#active.get(key) ?? 1) - 1;
      if (left <= 0) this.#active.delete(key);
      else this.#active.set(key, left);
    };
  }

  #roundRobin(cluster: string, pool: readonly Endpoint[]): Endpoint {
    const i = this.#cursors.get(cluster) ?? 0;
    this.#cursors.set(cluster, (i + 1) % 0x7fffffff);
    return pool[i % pool.length]!;
  }

  #hashPick(
    input: PickInput,
    policy: Extract<LoadBalancerPolicy, { kind: 'CONSISTENT_HASH' }>,
  ): EndpointChoice {
    const table = this.#table(input.cluster, input.candidates, policy);
    const key = hashKeyValue(policy.key, input.request);
    if (key !== undefined) return { endpoint: table.lookup(murmur3(key, 0)) };
    if (policy.key.kind === 'cookie' && policy.key.ttlMs !== undefined) {
      // Envoy generates the cookie when it is missing and a ttl is set, and hashes the new value.
      const value = randomBytes(8).toString('hex');
      return { endpoint: table.lookup(murmur3(value, 0)), setCookie: formatCookie(policy.key, value) };
    }
    // No key: Envoy hashes a random value, i.e. a random endpoint.
    return { endpoint: table.lookup((this.#random() * 0x100000000) >>> 0) };
  }

  #table(
    cluster: string,
    candidates: readonly Endpoint[],
    policy: Extract<LoadBalancerPolicy, { kind: 'CONSISTENT_HASH' }>,
  ): HashTable {
    const kind = `${policy.algorithm}/${policy.tableSize}`;
    let perArray = this.#byArray.get(candidates);
    const cached = perArray?.get(kind);
    if (cached) return cached;
    const sorted = [...candidates].sort(compareHosts);
    const signature = `${kind} ${sorted.map(hostKey).join(',')}`;
    let table = this.#byCluster.get(cluster);
    if (!table || table.signature !== signature) {
      table = {
        signature,
        table:
          policy.algorithm === 'maglev'
            ? maglev(sorted, policy.tableSize)
            : ringHash(sorted, policy.tableSize),
      };
      this.#byCluster.set(cluster, table);
    }
    if (!perArray) {
      perArray = new Map();
      this.#byArray.set(candidates, perArray);
    }
    perArray.set(kind, table.table);
    return table.table;
  }
}

function compareHosts(a: Endpoint, b: Endpoint): number {
  const ka = hostKey(a);
  const kb = hostKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** The key's value in the request, or undefined when the request lacks it. */
export function hashKeyValue(key: HashKey, req: HashInput): string | undefined {
  switch (key.kind) {
    case 'header': {
      const v = req.headers[key.name.toLowerCase()];
      if (v === undefined) return undefined;
      return Array.isArray(v) ? v.join(',') : v;
    }
    case 'cookie':
      return cookieValue(req.headers.cookie, key.name);
    case 'sourceIp':
      return req.sourceIp || undefined;
    case 'queryParameter': {
      const q = req.path.indexOf('?');
      if (q < 0) return undefined;
      const v = new URLSearchParams(req.path.slice(q + 1)).get(key.name);
      return v ?? undefined;
    }
  }
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    const v = part.slice(eq + 1).trim();
    return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
  }
  return undefined;
}

/** Envoy's generated hash cookie: `name="value"; Max-Age=s; Path=p; HttpOnly`. */
function formatCookie(key: Extract<HashKey, { kind: 'cookie' }>, value: string): string {
  let s = `${key.name}="${value}"; Max-Age=${Math.floor((key.ttlMs ?? 0) / 1000)}`;
  if (key.path) s += `; Path=${key.path}`;
  return `${s}; HttpOnly`;
}

/**
 * Ring hash (Envoy's ring_hash with equal weights): each host gets ceil(size / hosts) points at
 * hash(`ip:port_i`); a key goes to the first point at or after its hash, wrapping around.
 */
export function ringHash(sorted: readonly Endpoint[], minimumRingSize = DEFAULT_RING_SIZE): HashTable {
  const perHost = Math.max(1, Math.ceil(Math.min(minimumRingSize, MAX_RING_SIZE) / sorted.length));
  const n = perHost * sorted.length;
  const points = new Uint32Array(n);
  const owner = new Uint32Array(n);
  const order = new Uint32Array(n);
  let k = 0;
  for (let h = 0; h < sorted.length; h++) {
    const name = hostKey(sorted[h]!);
    for (let i = 0; i < perHost; i++, k++) {
      points[k] = murmur3(`${name}_${i}`, 0);
      owner[k] = h;
      order[k] = k;
    }
  }
  // Ties broken by host order so the ring is the same in every process.
  order.sort((a, b) => points[a]! - points[b]! || owner[a]! - owner[b]!);
  const ring = new Uint32Array(n);
  const ringOwner = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    ring[i] = points[order[i]!]!;
    ringOwner[i] = owner[order[i]!]!;
  }
  return {
    hosts: sorted,
    lookup(hash) {
      let lo = 0;
      let hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (ring[mid]! < hash) lo = mid + 1;
        else hi = mid;
      }
      return sorted[ringOwner[lo === n ? 0 : lo]!]!;
    },
  };
}

/**
 * Maglev (Eisenbud et al. 2016, as Envoy implements it with equal weights): each host fills the
 * table along its own permutation (offset, skip from two hashes of its name) in turns until full.
 */
export function maglev(sorted: readonly Endpoint[], tableSize = DEFAULT_MAGLEV_SIZE): HashTable {
  const m = tableSize;
  const n = sorted.length;
  const table = new Int32Array(m).fill(-1);
  const offset = new Array<number>(n);
  const skip = new Array<number>(n);
  const next = new Array<number>(n).fill(0);
  for (let h = 0; h < n; h++) {
    const name = hostKey(sorted[h]!);
    offset[h] = murmur3(name, 0xa5a5a5a5) % m;
    skip[h] = (murmur3(name, 0x5a5a5a5a) % (m - 1)) + 1;
  }
  let filled = 0;
  while (filled < m) {
    for (let h = 0; h < n && filled < m; h++) {
      let c = (offset[h]! + next[h]! * skip[h]!) % m;
      for (let tries = 0; table[c]! >= 0; tries++) {
        // A non-prime size can make a permutation cycle short: fall back to the next free slot.
        if (tries >= m) c = table.indexOf(-1);
        else {
          next[h]!++;
          c = (offset[h]! + next[h]! * skip[h]!) % m;
        }
      }
      table[c] = h;
      next[h]!++;
      filled++;
    }
  }
  return { hosts: sorted, lookup: (hash) => sorted[table[hash % m]!]! };
}

/** MurmurHash3 x86_32 over the UTF-8 bytes: deterministic across processes and platforms. */
export function murmur3(text: string, seed: number): number {
  const bytes = Buffer.from(text, 'utf8');
  const len = bytes.length;
  let h = seed >>> 0;
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    let k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = len & 3;
  if (tail > 0) {
    let k = 0;
    if (tail === 3) k ^= bytes[i + 2]! << 16;
    if (tail >= 2) k ^= bytes[i + 1]! << 8;
    k ^= bytes[i]!;
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
  }
  h ^= len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
