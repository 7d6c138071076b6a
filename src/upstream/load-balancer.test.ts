import { describe, expect, it } from 'vitest';
import type { Endpoint } from '../../config/model.ts';
import type { HashKey, LoadBalancerPolicy } from './cluster.ts';
import { type HashInput, hostKey, LoadBalancer } from './load-balancer.ts';

function endpoints(n: number, base = 0): Endpoint[] {
  return Array.from({ length: n }, (_, i) => ({
    ip: `127.0.160.${base + i + 1}`,
    port: 8080,
    identity: 'spiffe://cluster.local/ns/default/sa/echo',
    ready: true,
    serving: true,
    terminating: false,
  }));
}

const NO_REQUEST: HashInput = { headers: {}, path: '/', sourceIp: '127.0.161.1' };

function hashPolicy(key: HashKey, algorithm: 'ringHash' | 'maglev'): LoadBalancerPolicy {
  return { kind: 'CONSISTENT_HASH', key, algorithm, tableSize: algorithm === 'maglev' ? 65537 : 1024 };
}

function pickHost(
  lb: LoadBalancer,
  policy: LoadBalancerPolicy,
  candidates: readonly Endpoint[],
  request = NO_REQUEST,
) {
  const p = lb.pick({
    cluster: 'inbound-vip|8080|http|echo.default.svc.cluster.local',
    policy,
    candidates,
    request,
  });
  if (!p) throw new Error('no pick');
  return hostKey(p.endpoint);
}

describe('ROUND_ROBIN', () => {
  it('cycles through every endpoint in order and keeps its cursor across endpoint lists', () => {
    const lb = new LoadBalancer();
    const eps = endpoints(3);
    const rr: LoadBalancerPolicy = { kind: 'ROUND_ROBIN' };
    const seen = Array.from({ length: 6 }, () => pickHost(lb, rr, eps));
    expect(seen.slice(0, 3).sort()).toEqual(eps.map(hostKey).sort());
    expect(seen.slice(3)).toEqual(seen.slice(0, 3));
    // A new snapshot (a new, equal array) continues the cycle instead of restarting at the first.
    expect(pickHost(lb, rr, endpoints(3))).toBe(seen[0]);
    expect(pickHost(lb, rr, endpoints(3))).toBe(seen[1]);
  });
});

describe('RANDOM', () => {
  it('reaches every endpoint', () => {
    const lb = new LoadBalancer();
    const eps = endpoints(4);
    const seen = new Set<string>();
    for (let i = 0; i < 400 && seen.size < 4; i++) seen.add(pickHost(lb, { kind: 'RANDOM' }, eps));
    expect(seen.size).toBe(4);
  });
});

describe('LEAST_REQUEST', () => {
  it('prefers the idle endpoint of two', () => {
    const lb = new LoadBalancer();
    const [busy, idle] = endpoints(2);
    const release = lb.begin(busy!);
    for (let i = 0; i < 50; i++)
      expect(pickHost(lb, { kind: 'LEAST_REQUEST' }, [busy!, idle!])).toBe(hostKey(idle!));
    release();
    release(); // idempotent
    expect(lb.load(busy!)).toBe(0);
  });

  it('never picks the busiest of three once the other two are idle', () => {
    const lb = new LoadBalancer();
    const eps = endpoints(3);
    lb.begin(eps[0]!);
    lb.begin(eps[0]!);
    for (let i = 0; i < 100; i++)
      expect(pickHost(lb, { kind: 'LEAST_REQUEST' }, eps)).not.toBe(hostKey(eps[0]!));
  });
});

describe('exclusions', () => {
  it.each<LoadBalancerPolicy>([{ kind: 'ROUND_ROBIN' }, { kind: 'RANDOM' }, { kind: 'LEAST_REQUEST' }])(
    '$kind avoids excluded hosts while another remains, then accepts one',
    (policy) => {
      const lb = new LoadBalancer();
      const eps = endpoints(3);
      const exclude = new Set([hostKey(eps[0]!), hostKey(eps[1]!)]);
      for (let i = 0; i < 30; i++) {
        const p = lb.pick({ cluster: 'c', policy, candidates: eps, exclude, request: NO_REQUEST });
        expect(hostKey(p!.endpoint)).toBe(hostKey(eps[2]!));
      }
      const all = new Set(eps.map(hostKey));
      const p = lb.pick({ cluster: 'c', policy, candidates: eps, exclude: all, request: NO_REQUEST });
      expect(all.has(hostKey(p!.endpoint))).toBe(true);
    },
  );

  it('consistent hash ignores exclusions (as Istio configures it)', () => {
    const lb = new LoadBalancer();
    const eps = endpoints(5);
    const policy = hashPolicy({ kind: 'header', name: 'x-user' }, 'ringHash');
    const req: HashInput = { ...NO_REQUEST, headers: { 'x-user': 'alice' } };
    const first = pickHost(lb, policy, eps, req);
    const p = lb.pick({ cluster: 'c', policy, candidates: eps, exclude: new Set([first]), request: req });
    expect(hostKey(p!.endpoint)).toBe(first);
  });
});

describe.each(['ringHash', 'maglev'] as const)('CONSISTENT_HASH %s', (algorithm) => {
  const keys = Array.from({ length: 1000 }, (_, i) => `user-${i}`);
  const policy = hashPolicy({ kind: 'header', name: 'x-user' }, algorithm);
  const req = (k: string): HashInput => ({ ...NO_REQUEST, headers: { 'x-user': k } });

  it('maps a key to the same endpoint in two independent instances whatever the arrival order', () => {
    const replicaA = new LoadBalancer();
    const replicaB = new LoadBalancer();
    const eps = endpoints(7);
    const shuffled = [...eps].reverse();
    for (const k of keys)
      expect(pickHost(replicaB, policy, shuffled, req(k))).toBe(pickHost(replicaA, policy, eps, req(k)));
  });

  it('spreads keys over every endpoint', () => {
    const lb = new LoadBalancer();
    const eps = endpoints(5);
    const counts = new Map<string, number>();
    for (const k of keys) {
      const h = pickHost(lb, policy, eps, req(k));
      counts.set(h, (counts.get(h) ?? 0) + 1);
    }
    expect(counts.size).toBe(5);
    for (const c of counts.values()) expect(c).toBeGreaterThan(100);
  });

  it('moves only about 1/N of the keys when one of N endpoints goes away', () => {
    const lb = new LoadBalancer();
    const eps = endpoints(10);
    const before = keys.map((k) => pickHost(lb, policy, eps, req(k)));
    const removed = hostKey(eps[3]!);
    const fewer = eps.filter((e) => hostKey(e) !== removed);
    const after = keys.map((k) => pickHost(lb, policy, fewer, req(k)));
    let moved = 0;
    for (let i = 0; i < keys.length; i++) {
      if (before[i] === removed) expect(after[i]).not.toBe(removed);
      else if (before[i] !== after[i]) moved++;
    }
    const onRemoved = before.filter((h) => h === removed).length;
    // Keys on the removed host must move (about 1/10 of them). Of the others only a little churn:
    // ring hash re-spreads ceil(1024/N) points per host when N changes, as Envoy's does, and
    // maglev's table refill shifts a few slots. A modulo hash would move about 90% of all keys.
    expect(onRemoved).toBeGreaterThan(40);
    expect(onRemoved).toBeLessThan(180);
    expect(onRemoved + moved).toBeLessThan(2 * (keys.length / eps.length));
  });

  it('sends requests without the key to random endpoints', () => {
    const lb = new LoadBalancer();
    const eps = endpoints(4);
    const seen = new Set<string>();
    for (let i = 0; i < 400 && seen.size < 4; i++) seen.add(pickHost(lb, policy, eps));
    expect(seen.size).toBe(4);
  });
});

describe('hash keys', () => {
  const eps = endpoints(8);

  it('reads the cookie, the source IP and the query parameter', () => {
    const lb = new LoadBalancer();
    const cookie = hashPolicy(
      { kind: 'cookie', name: 'session', path: undefined, ttlMs: undefined },
      'ringHash',
    );
    const a = pickHost(lb, cookie, eps, { ...NO_REQUEST, headers: { cookie: 'x=1; session=abc' } });
    for (let i = 0; i < 20; i++)
      expect(pickHost(lb, cookie, eps, { ...NO_REQUEST, headers: { cookie: 'session="abc"' } })).toBe(a);

    const src = hashPolicy({ kind: 'sourceIp' }, 'maglev');
    const s = pickHost(lb, src, eps, { ...NO_REQUEST, sourceIp: '127.0.162.9' });
    for (let i = 0; i < 20; i++)
      expect(pickHost(lb, src, eps, { ...NO_REQUEST, sourceIp: '127.0.162.9' })).toBe(s);

    const query = hashPolicy({ kind: 'queryParameter', name: 'shard' }, 'ringHash');
    const q = pickHost(lb, query, eps, { ...NO_REQUEST, path: '/a?shard=7&x=1' });
    for (let i = 0; i < 20; i++)
      expect(pickHost(lb, query, eps, { ...NO_REQUEST, path: '/b?x=2&shard=7' })).toBe(q);
  });

  it('generates the cookie when it is missing and a ttl is set, and the cookie then sticks', () => {
    const lb = new LoadBalancer();
    const policy = hashPolicy({ kind: 'cookie', name: 'session', path: '/', ttlMs: 60_000 }, 'ringHash');
    const first = lb.pick({ cluster: 'c', policy, candidates: eps, request: NO_REQUEST })!;
    expect(first.setCookie).toMatch(/^session="[0-9a-f]{16}"; Max-Age=60; Path=\/; HttpOnly$/);
    const value = /"([0-9a-f]+)"/.exec(first.setCookie!)![1];
    for (let i = 0; i < 20; i++) {
      const again = lb.pick({
        cluster: 'c',
        policy,
        candidates: eps,
        request: { ...NO_REQUEST, headers: { cookie: `session=${value}` } },
      })!;
      expect(again.setCookie).toBeUndefined();
      expect(hostKey(again.endpoint)).toBe(hostKey(first.endpoint));
    }
  });

  it('does not generate a cookie without a ttl', () => {
    const lb = new LoadBalancer();
    const policy = hashPolicy(
      { kind: 'cookie', name: 'session', path: undefined, ttlMs: undefined },
      'maglev',
    );
    expect(
      lb.pick({ cluster: 'c', policy, candidates: eps, request: NO_REQUEST })!.setCookie,
    ).toBeUndefined();
  });
});
