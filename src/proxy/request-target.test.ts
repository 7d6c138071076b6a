import { describe, expect, it } from 'vitest';
import { checkRequestTarget } from './request-target.ts';

describe('checkRequestTarget', () => {
  it('passes origin-form as it is', () => {
    expect(checkRequestTarget('GET', '/a/../b?q=1')).toEqual({ ok: true, path: '/a/../b?q=1' });
  });

  it('turns http(s) absolute-form into origin-form without normalizing the path', () => {
    expect(checkRequestTarget('GET', 'http://svc/admin')).toEqual({
      ok: true,
      path: '/admin',
      authority: 'svc',
    });
    expect(checkRequestTarget('GET', 'HTTPS://svc:8443/a/../admin?x=1')).toEqual({
      ok: true,
      path: '/a/../admin?x=1',
      authority: 'svc:8443',
    });
    expect(checkRequestTarget('GET', 'http://svc')).toEqual({ ok: true, path: '/', authority: 'svc' });
    expect(checkRequestTarget('GET', 'http://svc?x')).toEqual({ ok: true, path: '/?x', authority: 'svc' });
    expect(checkRequestTarget('GET', 'http://[::1]:80/p')).toEqual({
      ok: true,
      path: '/p',
      authority: '[::1]:80',
    });
  });

  it.each([
    ['GET', '*'],
    ['GET', 'svc:80'],
    ['GET', 'admin'],
    ['POST', 'htp://web/x'],
    ['GET', 'ftp://svc/admin'],
    ['GET', 'http://user@svc/admin'],
    ['GET', 'http:///admin'],
    ['GET', '/a b'],
    ['GET', '/a\x01'],
    ['GET', ''],
  ])('refuses %s %j with 400', (method, target) => {
    expect(checkRequestTarget(method, target)).toMatchObject({
      ok: false,
      reason: 'downstream_bad_request_target',
    });
  });

  it('answers OPTIONS * locally, as Envoy does', () => {
    expect(checkRequestTarget('OPTIONS', '*')).toMatchObject({
      ok: false,
      reason: 'downstream_asterisk_form',
    });
  });
});
