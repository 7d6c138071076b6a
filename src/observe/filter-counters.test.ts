import client from 'prom-client';
import { describe, expect, it } from 'vitest';
import { FilterCounters } from './filter-counters.ts';

const DECISIONS = {
  name: 'test_decisions_total',
  help: 'Decisions, by policy and result.',
  labels: ['policy', 'result'],
  zeros: [['none', 'ok']],
} as const;

async function values(reg: client.Registry): Promise<Array<[Record<string, unknown>, number]>> {
  const m = (await reg.getMetricsAsJSON()).find((x) => x.name === DECISIONS.name);
  return (m?.values ?? []).map((v) => [v.labels, v.value]);
}

describe('FilterCounters', () => {
  it('counts by label values, with the declared zero series from the start', async () => {
    const reg = new client.Registry();
    const c = new FilterCounters(reg).counter(DECISIONS);
    expect(await values(reg)).toEqual([[{ policy: 'none', result: 'ok' }, 0]]);
    c.inc('shop/a', 'ok');
    c.inc('shop/a', 'ok');
    c.inc('shop/a', 'over_limit');
    c.inc('shop/b', 'ok');
    expect(await values(reg)).toEqual([
      [{ policy: 'none', result: 'ok' }, 0],
      [{ policy: 'shop/a', result: 'ok' }, 2],
      [{ policy: 'shop/a', result: 'over_limit' }, 1],
      [{ policy: 'shop/b', result: 'ok' }, 1],
    ]);
    expect(
      (await reg.metrics()).match(/# HELP test_decisions_total Decisions, by policy and result\./),
    ).toBeTruthy();
  });

  it('a later snapshot declaring the same family gets the same counter; other labels are an error', async () => {
    const reg = new client.Registry();
    const counters = new FilterCounters(reg);
    const first = counters.counter(DECISIONS);
    first.inc('shop/a', 'ok');
    const again = counters.counter(DECISIONS);
    expect(again).toBe(first);
    again.inc('shop/a', 'ok');
    expect((await values(reg)).at(-1)).toEqual([{ policy: 'shop/a', result: 'ok' }, 2]);
    expect(() => counters.counter({ ...DECISIONS, labels: ['policy'] })).toThrow(
      'counter test_decisions_total declared with labels [policy], it has [policy,result]',
    );
  });

  it('a family without labels counts too', async () => {
    const reg = new client.Registry();
    new FilterCounters(reg).counter({ name: 'test_events_total', help: 'Events.', labels: [] }).inc();
    expect((await reg.getSingleMetricAsString('test_events_total')).endsWith('test_events_total 1')).toBe(
      true,
    );
  });
});
