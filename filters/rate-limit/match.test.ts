import { describe, expect, it } from 'vitest';
import { bucketKey, type RequestFacts } from './match.ts';
import type { AttachedRule, ClientSelector, RateLimitRule } from './model.ts';

const NONE: ClientSelector = {
  headers: [],
  sourceCIDR: undefined,
  sourcePrincipal: undefined,
  sourceNamespace: undefined,
  methods: [],
  path: undefined,
};

function attached(
  selectors: Partial<ClientSelector>[],
  scope: string | undefined = 'Service shop/api',
): AttachedRule {
  const rule: RateLimitRule = {
    policy: 'shop/p',
    type: 'Local',
    index: 0,
    selectors: selectors.map((s) => ({ ...NONE, ...s })),
    requests: 1,
    configuredRequests: 1,
    scope: 'Replica',
    replicas: 1,
    unit: 'Minute',
    shared: false,
    headers: false,
  };
  return { rule, scope };
}

const facts = (over: Partial<RequestFacts> = {}): RequestFacts => ({
  method: 'GET',
  path: '/v1/items',
  headers: {},
  sourceIp: '127.0.0.50',
  sourcePrincipal: 'cluster.local/ns/shop/sa/sleep',
  sourceNamespace: 'shop',
  destination: 'Service shop/api',
  ...over,
});

const str = (type: 'Exact' | 'RegularExpression' | 'Distinct', value = '', invert = false) => ({
  type,
  value,
  regex: type === 'RegularExpression' ? new RegExp(`^(?:${value})$`) : undefined,
  invert,
});

describe('bucketKey', () => {
  it('no selectors: every request, one bucket per scope', () => {
    expect(bucketKey(attached([]), facts())).toBe('shop/p:Local:0:Minute:Service%20shop%2Fapi');
    // A waypoint-wide rule counts per destination.
    expect(bucketKey({ ...attached([]), scope: undefined }, facts({ destination: 'Service shop/web' }))).toBe(
      'shop/p:Local:0:Minute:Service%20shop%2Fweb',
    );
  });

  it('Distinct header: one bucket per value; absent header: the rule does not apply', () => {
    const a = attached([{ headers: [{ ...str('Distinct'), name: 'x-user' }] }]);
    const alice = bucketKey(a, facts({ headers: { 'x-user': 'alice' } }));
    const bob = bucketKey(a, facts({ headers: { 'x-user': 'bob' } }));
    expect(alice).toMatch(/:alice$/);
    expect(bob).toMatch(/:bob$/);
    expect(bucketKey(a, facts())).toBeUndefined();
  });

  it('Exact and RegularExpression headers share one bucket; invert matches absent or different values', () => {
    const exact = attached([{ headers: [{ ...str('Exact', 'gold'), name: 'x-tier' }] }]);
    expect(bucketKey(exact, facts({ headers: { 'x-tier': 'gold' } }))).toBe(bucketKey(attached([]), facts()));
    expect(bucketKey(exact, facts({ headers: { 'x-tier': 'golden' } }))).toBeUndefined();
    const re = attached([{ headers: [{ ...str('RegularExpression', 'g.ld'), name: 'x-tier' }] }]);
    expect(bucketKey(re, facts({ headers: { 'x-tier': 'gold' } }))).toBeDefined();
    expect(bucketKey(re, facts({ headers: { 'x-tier': 'xgold' } }))).toBeUndefined();
    const inv = attached([{ headers: [{ ...str('Exact', 'gold', true), name: 'x-tier' }] }]);
    expect(bucketKey(inv, facts())).toBeDefined();
    expect(bucketKey(inv, facts({ headers: { 'x-tier': 'gold' } }))).toBeUndefined();
  });

  it('source principal and namespace (extensions), Distinct and Exact', () => {
    const perPrincipal = attached([{ sourcePrincipal: str('Distinct') }]);
    expect(bucketKey(perPrincipal, facts())).toMatch(/:cluster\.local%2Fns%2Fshop%2Fsa%2Fsleep$/);
    const ns = attached([{ sourceNamespace: str('Exact', 'other') }]);
    expect(bucketKey(ns, facts())).toBeUndefined();
    expect(bucketKey(ns, facts({ sourceNamespace: 'other' }))).toBeDefined();
  });

  it('sourceCIDR: Exact shares a bucket, Distinct keys on the address', () => {
    const cidr = (type: 'Exact' | 'Distinct') =>
      attached([{ sourceCIDR: { type, cidr: '127.0.0.0/24', contains: (ip) => ip.startsWith('127.0.0.') } }]);
    expect(bucketKey(cidr('Exact'), facts())).toBe(bucketKey(attached([]), facts()));
    expect(bucketKey(cidr('Distinct'), facts())).toMatch(/:127\.0\.0\.50$/);
    expect(bucketKey(cidr('Exact'), facts({ sourceIp: '10.0.0.1' }))).toBeUndefined();
  });

  it('methods and path (extensions); every selector must hold', () => {
    const a = attached([
      { methods: ['POST'] },
      { path: { type: 'PathPrefix', value: '/v1', regex: undefined, invert: false } },
    ]);
    expect(bucketKey(a, facts({ method: 'POST' }))).toBeDefined();
    expect(bucketKey(a, facts({ method: 'GET' }))).toBeUndefined();
    expect(bucketKey(a, facts({ method: 'POST', path: '/v10' }))).toBeUndefined();
    expect(bucketKey(a, facts({ method: 'POST', path: '/v1' }))).toBeDefined();
  });

  it('hashes long distinct values so keys stay bounded', () => {
    const a = attached([{ headers: [{ ...str('Distinct'), name: 'authorization' }] }]);
    const key = bucketKey(a, facts({ headers: { authorization: 'x'.repeat(5000) } }))!;
    expect(key.length).toBeLessThan(200);
    expect(key).toMatch(/:sha256-[0-9a-f]{32}$/);
  });
});
