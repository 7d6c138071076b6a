import { describe, expect, it } from 'vitest';
import { toJson } from './json-dump.ts';

describe('toJson', () => {
  it('renders Maps (nested too), Sets and RegExps instead of {}', () => {
    const v = { ports: new Map([[80, { hosts: new Map([['a', new Set(['x'])]]), re: /^\/api/ }]]) };
    expect(JSON.parse(toJson(v))).toEqual({ ports: { '80': { hosts: { a: ['x'] }, re: '^\\/api' } } });
  });
  it('prints a repeated (not circular) object in full, a cycle as [circular]', () => {
    const shared = { n: 1 };
    const cyclic: Record<string, unknown> = { name: 'c' };
    cyclic.self = cyclic;
    expect(JSON.parse(toJson({ a: shared, b: shared, cyclic }))).toEqual({
      a: { n: 1 },
      b: { n: 1 },
      cyclic: { name: 'c', self: '[circular]' },
    });
  });
});

describe('toJson through Maps', () => {
  it('finds a cycle that runs through a Map', () => {
    const node: Record<string, unknown> = { name: 'n' };
    node.children = new Map([['me', node]]);
    expect(JSON.parse(toJson(node))).toEqual({ name: 'n', children: { me: '[circular]' } });
  });
});
