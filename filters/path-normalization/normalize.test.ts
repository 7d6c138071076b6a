import { describe, expect, it } from 'vitest';
import { normalizePath } from './normalize.ts';

describe('normalizePath (BASE)', () => {
  it.each([
    ['/a/b?x=1', '/a/b?x=1'],
    ['/a/%2e%2e/b', '/b'],
    ['/a/./b/../c', '/a/c'],
    ['/a/%41%7e%2D', '/a/A~-'],
    ['/a/%2F/b', '/a/%2F/b'],
    ['/a/%5c/b', '/a/%5c/b'],
    ['/a\\b\\..\\c', '/a/c'],
    ['/a//b', '/a//b'],
    ['/../../x', '/x'],
    ['/a/..', '/'],
    ['/a/.', '/a/'],
    ['/a/%2e%2e?q=/../x', '/?q=/../x'],
    ['/a%20b', '/a%20b'],
  ])('%s → %s', (input, want) => {
    expect(normalizePath(input)).toEqual({ ok: true, path: want });
  });
  it('rejects %00', () => {
    expect(normalizePath('/a%00b').ok).toBe(false);
  });
});
