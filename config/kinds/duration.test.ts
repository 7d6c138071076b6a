import { describe, expect, it } from 'vitest';
import { gatewayDuration, istioDuration, parseGatewayDuration, parseIstioDuration } from './duration.ts';

describe('parseGatewayDuration', () => {
  it.each([
    ['10s', 10_000],
    ['500ms', 500],
    ['1h30m', 5_400_000],
    ['1m', 60_000],
    ['0s', 0],
    ['1h1m1s1ms', 3_661_001],
    ['99999ms', 99_999],
  ])('reads %s as %d ms', (text, ms) => {
    expect(parseGatewayDuration(text)).toBe(ms);
  });

  it.each(['', '1.5s', '1d', '-1s', '100000s', '1h1m1s1ms1h', 's', '1 s'])('rejects %j', (text) => {
    expect(() => parseGatewayDuration(text)).toThrow(`invalid Gateway API duration ${JSON.stringify(text)}`);
  });
});

describe('parseIstioDuration', () => {
  it.each([
    ['1s', 1000],
    ['0.5s', 500],
    ['1.5s', 1500],
    ['250ms', 250],
    ['1m', 60_000],
    ['1h30m', 5_400_000],
    ['1h2m3.5s', 3_723_500],
    ['0', 0],
    ['0s', 0],
    ['1500us', 1.5],
  ])('reads %s as %d ms', (text, ms) => {
    expect(parseIstioDuration(text)).toBe(ms);
  });

  it.each(['', '1', '-1s', '1d', 's', '1s ', 'abc', '1.2.3s'])('rejects %j', (text) => {
    expect(() => parseIstioDuration(text)).toThrow(`invalid duration ${JSON.stringify(text)}`);
  });
});

describe('duration schema leaves', () => {
  it('accept valid text unchanged and name what they expected otherwise', () => {
    expect(gatewayDuration.parse('1h30m')).toBe('1h30m');
    expect(istioDuration.parse('0.5s')).toBe('0.5s');
    const bad = gatewayDuration.safeParse('1.5s', { reportInput: true });
    expect(bad.error?.issues[0]?.message).toBe(
      'expected a duration like "10s", "1h30m" or "500ms", got "1.5s"',
    );
    const wrongType = istioDuration.safeParse(5, { reportInput: true });
    expect(wrongType.error?.issues[0]?.message).toBe(
      'expected a duration like "1s", "0.5s", "250ms" or "1h30m", got 5',
    );
  });
});
