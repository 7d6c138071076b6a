import { describe, expect, it } from 'vitest';
import {
  cidrMatcher,
  namespaceMatcher,
  parsePort,
  pathMatcher,
  principalMatcher,
  requestPrincipalMatcher,
  serviceAccountMatcher,
  stringMatcher,
} from './match.ts';

const fn = <T>(m: T | string): T => {
  if (typeof m === 'string') throw new Error(m);
  return m;
};

describe('stringMatcher', () => {
  it.each([
    ['abc', 'abc', true],
    ['abc', 'abcd', false],
    ['abc', 'ABC', false],
    ['ab*', 'abcd', true],
    ['ab*', 'xab', false],
    ['*cd', 'abcd', true],
    ['*cd', 'cdx', false],
    ['*', 'x', true],
    ['*', '', false],
    ['a*b', 'a*b', true],
    ['a*b', 'axb', false],
  ])('%s vs %s → %s', (p, v, want) => {
    expect(stringMatcher(p)(v)).toBe(want);
  });
  it('ignores case for hosts', () => {
    expect(stringMatcher('Example.COM', true)('example.com')).toBe(true);
    expect(stringMatcher('*.example.com', true)('API.Example.com')).toBe(true);
    expect(stringMatcher('example.com', true)('example.com:8080')).toBe(false);
  });
});

describe('identity matchers', () => {
  const uri = 'spiffe://cluster.local/ns/bank/sa/sleep';
  it('principals', () => {
    expect(principalMatcher('cluster.local/ns/bank/sa/sleep')(uri)).toBe(true);
    expect(principalMatcher('cluster.local/ns/bank/*')(uri)).toBe(true);
    expect(principalMatcher('*/sa/sleep')(uri)).toBe(true);
    expect(principalMatcher('*/sa/other')(uri)).toBe(false);
    expect(principalMatcher('*')(uri)).toBe(true);
    expect(principalMatcher('cluster.local/ns/bank/sa/slee')(uri)).toBe(false);
  });
  it('namespaces', () => {
    expect(namespaceMatcher('bank')(uri)).toBe(true);
    expect(namespaceMatcher('ban')(uri)).toBe(false);
    expect(namespaceMatcher('ba*')(uri)).toBe(true);
    expect(namespaceMatcher('*nk')(uri)).toBe(true);
    expect(namespaceMatcher('b.nk')(uri)).toBe(false);
  });
  it('serviceAccounts', () => {
    expect(fn(serviceAccountMatcher('bank/sleep', 'x'))(uri)).toBe(true);
    expect(fn(serviceAccountMatcher('sleep', 'bank'))(uri)).toBe(true);
    expect(fn(serviceAccountMatcher('sleep', 'other'))(uri)).toBe(false);
    expect(typeof serviceAccountMatcher('bank/*', 'x')).toBe('string');
    expect(typeof serviceAccountMatcher('a/b/c', 'x')).toBe('string');
  });
  it('requestPrincipals split at the last slash', () => {
    const iss = 'https://issuer.example.com';
    expect(requestPrincipalMatcher('*')(iss, 'alice')).toBe(true);
    expect(requestPrincipalMatcher('*')('', 'alice')).toBe(false);
    expect(requestPrincipalMatcher(`${iss}/alice`)(iss, 'alice')).toBe(true);
    expect(requestPrincipalMatcher(`${iss}/*`)(iss, 'bob')).toBe(true);
    expect(requestPrincipalMatcher(`${iss}/al*`)(iss, 'alice')).toBe(true);
    expect(requestPrincipalMatcher(`${iss}/al*`)(iss, 'bob')).toBe(false);
    expect(requestPrincipalMatcher('*example.com/alice')(iss, 'alice')).toBe(true);
    expect(requestPrincipalMatcher('*lice')(iss, 'alice')).toBe(true);
    expect(requestPrincipalMatcher('https:*')(iss, 'x')).toBe(true);
    expect(requestPrincipalMatcher('https*')(iss, 'x')).toBe(true);
  });
});

describe('cidrMatcher and ports', () => {
  it('matches addresses and subnets, v4 and v6', () => {
    const m = fn(cidrMatcher(['127.0.80.0/24', '10.1.2.3', '::1']));
    expect(m('127.0.80.9')).toBe(true);
    expect(m('127.0.81.9')).toBe(false);
    expect(m('10.1.2.3')).toBe(true);
    expect(m('::1')).toBe(true);
    expect(m('not-an-ip')).toBe(false);
  });
  it('rejects bad values', () => {
    expect(typeof cidrMatcher(['10.0.0.0/33'])).toBe('string');
    expect(typeof cidrMatcher(['nope'])).toBe('string');
  });
  it('parses ports', () => {
    expect(parsePort('8080')).toBe(8080);
    expect(parsePort('http')).toBeUndefined();
    expect(parsePort('70000')).toBeUndefined();
  });
});

describe('path templates', () => {
  const t = (p: string) => fn(pathMatcher(p));
  it.each([
    ['/foo/{*}', '/foo/bar', true],
    ['/foo/{*}', '/foo/bar/baz', false],
    ['/foo/{*}', '/foo/', false],
    ['/foo/{**}/', '/foo/bar/', true],
    ['/foo/{**}/', '/foo/bar/baz.txt', true],
    ['/foo/{**}/', '/foo//', true],
    ['/foo/{**}/', '/foo/bar', false],
    ['/foo/{*}/bar/{**}', '/foo/buzz/bar/', true],
    ['/foo/{*}/bar/{**}', '/foo/buzz/bar/baz', true],
    ['/foo/{*}/bar/{**}', '/foo/buzz/baz/x', false],
  ])('%s vs %s → %s', (p, v, want) => {
    expect(t(p)(v)).toBe(want);
  });
  it.each(['/*/baz/{*}', '/{**}/foo/{*}', '/foo/{*}.txt', 'foo/{*}'])('rejects %s', (p) => {
    expect(typeof pathMatcher(p)).toBe('string');
  });
});
