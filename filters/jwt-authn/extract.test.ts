import { describe, expect, it } from 'vitest';
import { DEFAULT_HEADER, DEFAULT_PARAM } from './config.ts';
import { extractTokens, parseCookies, removeToken, tokenAfter } from './extract.ts';

const defaults = { fromHeaders: [DEFAULT_HEADER], fromParams: [DEFAULT_PARAM], fromCookies: [] };

describe('extractTokens', () => {
  it('finds the default Authorization: Bearer token and the access_token parameter', () => {
    expect(extractTokens(defaults, { authorization: 'Bearer a.b.c' }, '/')).toEqual([
      { token: 'a.b.c', location: { kind: 'header', name: 'authorization' } },
    ]);
    expect(extractTokens(defaults, {}, '/x?y=1&access_token=d.e.f')).toEqual([
      { token: 'd.e.f', location: { kind: 'param', name: 'access_token' } },
    ]);
  });

  it('skips a header without the prefix and stops the token at the first non-token character', () => {
    expect(extractTokens(defaults, { authorization: 'Basic dXNlcjpwYXNz' }, '/')).toEqual([]);
    expect(extractTokens(defaults, { authorization: 'Bearer a.b.c, other' }, '/')[0]?.token).toBe('a.b.c');
    expect(tokenAfter('Bearer    x-y_z.1.2 ', 7)).toBe('x-y_z.1.2');
  });

  it('reads custom headers (with or without prefix), parameters and cookies', () => {
    const rule = {
      fromHeaders: [
        { name: 'x-jwt', prefix: '' },
        { name: 'x-token', prefix: 'Token ' },
      ],
      fromParams: ['tok'],
      fromCookies: ['session'],
    };
    const found = extractTokens(
      rule,
      { 'x-jwt': ' h.h.h ', 'x-token': 'Token t.t.t', cookie: 'a=1; session="c.c.c"' },
      '/?tok=p.p.p',
    );
    expect(found.map((f) => [f.location.kind, f.token])).toEqual([
      ['header', 'h.h.h'],
      ['header', 't.t.t'],
      ['param', 'p.p.p'],
      ['cookie', 'c.c.c'],
    ]);
    // Custom locations replace the defaults.
    expect(extractTokens(rule, { authorization: 'Bearer a.b.c' }, '/?access_token=x')).toEqual([]);
  });

  it('parses cookies and removes header tokens only', () => {
    expect(parseCookies('a=1; b = 2;c').get('b')).toBe('2');
    const headers: Record<string, string> = { authorization: 'Bearer x', cookie: 'session=y' };
    removeToken(headers, { kind: 'header', name: 'authorization' });
    removeToken(headers, { kind: 'cookie', name: 'session' });
    expect(headers).toEqual({ cookie: 'session=y' });
  });
});
