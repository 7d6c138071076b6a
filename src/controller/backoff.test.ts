import { describe, expect, it } from 'vitest';
import { Backoff } from './backoff.ts';

describe('Backoff', () => {
  it('doubles up to the cap, and starts again after reset', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0 });
    expect([b.delay(), b.delay(), b.delay(), b.delay(), b.delay(), b.delay()]).toEqual([
      100, 200, 400, 800, 1000, 1000,
    ]);
    b.reset();
    expect(b.delay()).toBe(100);
  });

  it('draws each delay below the nominal one by at most the jitter', () => {
    const b = new Backoff({ initialMs: 1000, jitter: 0.2, random: () => 1 });
    expect(b.delay()).toBe(800);
    expect(b.delay()).toBe(1600);
  });
});
