import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { HeapShedder } from './overload.ts';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

function shedder(used: { value: number }, opts: { maxBytes?: number } = {}) {
  const changes: Array<[boolean, number]> = [];
  const s = new HeapShedder({
    highWater: 0.9,
    lowWater: 0.8,
    intervalMs: 1000,
    ...opts,
    read: () => ({ used: used.value, limit: 1000 }),
    onChange: (shedding, ratio) => changes.push([shedding, ratio]),
  });
  return { s, changes };
}

it('sheds from the high-water mark and recovers only below the low-water mark, sampled on the timer', () => {
  const used = { value: 500 };
  const { s, changes } = shedder(used);
  s.start();
  expect(s.shedding).toBe(false);
  used.value = 900;
  expect(s.shedding).toBe(false); // not sampled yet
  vi.advanceTimersByTime(1000);
  expect(s.shedding).toBe(true);
  used.value = 850; // between the marks: still shedding
  vi.advanceTimersByTime(1000);
  expect(s.shedding).toBe(true);
  used.value = 799;
  vi.advanceTimersByTime(1000);
  expect(s.shedding).toBe(false);
  expect(changes).toEqual([
    [true, 0.9],
    [false, 0.799],
  ]);
  s.stop();
  used.value = 1000;
  vi.advanceTimersByTime(5000);
  expect(s.shedding).toBe(false);
});

it('reports each transition once, not on every sample above the mark', () => {
  const used = { value: 950 };
  const { s, changes } = shedder(used);
  s.start();
  vi.advanceTimersByTime(10_000);
  expect(changes).toHaveLength(1);
  s.stop();
});

it('measures against a configured maximum instead of the heap limit', () => {
  const used = { value: 460 };
  const { s } = shedder(used, { maxBytes: 500 });
  s.sample();
  expect(s.shedding).toBe(true);
  expect(s.ratio).toBeCloseTo(0.92);
});

it('does not keep the process alive', () => {
  const { s } = shedder({ value: 0 });
  s.start();
  expect(vi.getTimerCount()).toBe(1);
  s.stop();
  expect(vi.getTimerCount()).toBe(0);
});

it('rejects marks out of order', () => {
  expect(() => new HeapShedder({ highWater: 0.7, lowWater: 0.8, intervalMs: 1000 })).toThrow(/low/);
});
