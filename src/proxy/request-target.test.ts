import { describe, expect, it } from 'vitest';
import { requestTarget } from './request-target.ts';

describe('requestTarget', () => {
  it('keeps origin-form and its authority', () => {
    expect(requestTarget('GET', '/a?b=1', 'web', true)).toEqual({
      kind: 'origin',
      path: '/a?b=1',
      authority: 'web',
    });
  });

  it('turns absolute-form into origin-form with the URI authority, IPv6 and ports included', () => {
    expect(requestTarget('GET', 'HTTP://web.shop:8080', 'x', true)).toEqual({
      kind: 'origin',
      path: '/',
      authority: 'web.shop:8080',
    });
    expect(requestTarget('GET', 'https://[fd00::1]:9/p?q', 'x', true)).toEqual({
      kind: 'origin',
      path: '/p?q',
      authority: '[fd00::1]:9',
    });
    expect(requestTarget('GET', 'http://web?q=1', 'x', true)).toEqual({
      kind: 'origin',
      path: '/?q=1',
      authority: 'web',
    });
  });

  it('refuses absolute-form on HTTP/2, where :path is origin-form or *', () => {
    expect(requestTarget('GET', 'http://web/admin', 'web', false)).toMatchObject({
      reason: 'invalid_request_target',
    });
  });

  it('gives asterisk-form to OPTIONS alone', () => {
    expect(requestTarget('OPTIONS', '*', 'web', true)).toMatchObject({ reason: 'absolute_path_rejected' });
    expect(requestTarget('DELETE', '*', 'web', true)).toMatchObject({ reason: 'invalid_request_target' });
  });

  it.each(['http://a@web/', 'http:///x', 'http://web/a#b', '/a#b', '/a\u0100', 'web/x', ''])(
    'refuses %j',
    (t) => {
      expect(requestTarget('GET', t, 'web', true).kind).toBe('reject');
    },
  );
});
