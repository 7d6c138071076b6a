import { describe, expect, it } from 'vitest';
import { SharedBuckets } from './shared-buckets.ts';

describe('SharedBuckets', () => {
  const req = (key: string, limiter = 'p:Local:0:3/Hour') => ({
    limiter,
    points: 3,
    durationSeconds: 3_600,
    key,
  });

  it('admits the limit per key, whoever asks', async () => {
    const b = new SharedBuckets();
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await b.consume(req('k')));
    expect(answers.map((a) => a.allowed)).toEqual([true, true, true, false, false]);
    expect(answers.map((a) => a.remainingPoints)).toEqual([2, 1, 0, 0, 0]);
    expect(answers[4]!.msBeforeNext).toBeGreaterThan(0);
    expect((await b.consume(req('other'))).allowed).toBe(true);
  });

  it('drops a limiter unused for two windows', async () => {
    let now = 0;
    const b = new SharedBuckets(() => now);
    await b.consume(req('k', 'a'));
    await b.consume(req('k', 'b'));
    expect(b.size).toBe(2);
    now = 7_200_001;
    await b.consume(req('k', 'b'));
    expect(b.size).toBe(1);
  });
});
