import { describe, expect, it } from 'vitest';
import { LocalBuckets } from './local.ts';
import type { RateLimitRule } from './model.ts';

const rule = (requests: number, over: Partial<RateLimitRule> = {}): RateLimitRule => ({
  policy: 'shop/p',
  type: 'Local',
  index: 0,
  selectors: [],
  requests,
  scope: 'Replica',
  configuredRequests: requests,
  replicas: 1,
  unit: 'Hour',
  shared: false,
  headers: true,
  ...over,
});

describe('LocalBuckets', () => {
  it('allows exactly the limit per window, then refuses, per key', async () => {
    const b = new LocalBuckets();
    const r = rule(3);
    const got = [];
    for (let i = 0; i < 5; i++) got.push(await b.consume(r, 'k'));
    expect(got.map((d) => d.allowed)).toEqual([true, true, true, false, false]);
    expect(got.map((d) => d.remaining)).toEqual([2, 1, 0, 0, 0]);
    expect(got[0]).toMatchObject({ limit: 3, windowSeconds: 3600 });
    expect(got[4]!.resetSeconds).toBeGreaterThan(3590);
    expect((await b.consume(r, 'other')).allowed).toBe(true);
  });

  it('a limit of 0 refuses everything', async () => {
    expect((await new LocalBuckets().consume(rule(0), 'k')).allowed).toBe(false);
  });

  it('keeps counts across snapshots for an unchanged rule, starts afresh when the limit changes', async () => {
    const b = new LocalBuckets();
    await b.consume(rule(1), 'k');
    b.retain([rule(1)]);
    expect((await b.consume(rule(1), 'k')).allowed).toBe(false);
    b.retain([rule(2)]);
    expect((await b.consume(rule(2), 'k')).allowed).toBe(true);
  });
});
