import { describe, expect, it } from 'vitest';
import { formatAuthority, forwardedFor, parseAuthority } from './authority.ts';

describe('parseAuthority', () => {
  it('parses IPv4 and bracketed IPv6 with a port', () => {
    expect(parseAuthority('127.0.0.5:8080')).toEqual({ ip: '127.0.0.5', port: 8080 });
    expect(parseAuthority('[::1]:443')).toEqual({ ip: '::1', port: 443 });
  });
  it('refuses names, missing or bad ports', () => {
    for (const bad of [
      'reviews.shop.svc:9080',
      '127.0.0.5',
      '127.0.0.5:0',
      '127.0.0.5:70000',
      '::1:80',
      '',
      undefined,
    ]) {
      expect(parseAuthority(bad)).toBeUndefined();
    }
  });
  it('formats IPv6 in brackets', () => {
    expect(formatAuthority('::1', 80)).toBe('[::1]:80');
    expect(formatAuthority('127.0.0.1', 80)).toBe('127.0.0.1:80');
  });
});

describe('forwardedFor', () => {
  it("reads ztunnel's for= (quoted, with port) and ignores host=", () => {
    expect(forwardedFor('for="127.0.3.4:5000";host=reviews.shop.svc.cluster.local')).toEqual({
      ip: '127.0.3.4',
      port: 5000,
    });
    expect(forwardedFor('for="[::1]:5000"')).toEqual({ ip: '::1', port: 5000 });
    expect(forwardedFor('for=127.0.3.4')).toEqual({ ip: '127.0.3.4', port: 0 });
    expect(forwardedFor('host=x')).toBeUndefined();
  });
});
