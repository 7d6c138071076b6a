// The filter contract: a filter drops into the chain without engine changes, a reply verdict
// stops the chain, a throwing filter becomes a 500 without escaping, onComplete always runs.
import { describe, expect, it } from 'vitest';
import type { Snapshot } from '../../config/model.ts';
import { silentLogger } from '../observe/logger.ts';
import type { Cluster } from '../upstream/cluster.ts';
import { FilterChain } from './chain.ts';
import type { RequestContext, TunnelInfo } from './context.ts';
import {
  CONTINUE,
  type Filter,
  type FilterContext,
  type FilterFactory,
  NO_FILTER_METRICS,
} from './filter.ts';

const ctx = (headers: Record<string, string> = {}): RequestContext =>
  ({
    id: 'r1',
    headers,
    signal: new AbortController().signal,
    attributes: new Map(),
    explain: [],
  }) as unknown as RequestContext;
const snapshot = {} as Snapshot;

describe('FilterChain', () => {
  it('runs filters in order and stops at the first reply', async () => {
    const order: string[] = [];
    const continuing = (n: string): Filter => ({
      name: n,
      onRequestHeaders: () => {
        order.push(n);
        return CONTINUE;
      },
    });
    const filters: Filter[] = [
      continuing('a'),
      {
        name: 'b',
        onRequestHeaders: async () => {
          order.push('b');
          return { kind: 'reply', reason: 'authz_denied' };
        },
      },
      continuing('c'),
    ];
    const verdict = await new FilterChain(filters, silentLogger).onRequestHeaders(ctx());
    expect(verdict).toEqual({ kind: 'reply', reason: 'authz_denied' });
    expect(order).toEqual(['a', 'b']);
  });

  it('turns a throwing filter into internal_error instead of letting it escape', async () => {
    const chain = new FilterChain(
      [
        {
          name: 'boom',
          onRequestHeaders: () => {
            throw new Error('bug');
          },
        },
      ],
      silentLogger,
    );
    expect(await chain.onRequestHeaders(ctx())).toMatchObject({ kind: 'reply', reason: 'internal_error' });
    expect(() =>
      new FilterChain(
        [
          {
            name: 'x',
            onComplete: () => {
              throw new Error('bug');
            },
          },
        ],
        silentLogger,
      ).onComplete(ctx(), {} as never),
    ).not.toThrow();
  });

  it('builds from factories, skipping filters a snapshot does not configure', () => {
    const factories: FilterFactory[] = [
      { name: 'on', create: () => ({ name: 'on', onRequestHeaders: () => CONTINUE }) },
      { name: 'off', create: () => undefined },
    ];
    expect(FilterChain.build(factories, snapshot, silentLogger).filters.map((f) => f.name)).toEqual(['on']);
  });

  it('runs response hooks in reverse order', () => {
    const seen: string[] = [];
    const mk = (n: string): Filter => ({
      name: n,
      onResponseHeaders: (_c, head) => {
        seen.push(n);
        head.headers[`x-${n}`] = '1';
      },
    });
    const head = { status: 200, headers: {} as Record<string, string> };
    new FilterChain([mk('a'), mk('b')], silentLogger).onResponseHeaders(ctx(), head);
    expect(seen).toEqual(['b', 'a']);
    expect(head.headers).toEqual({ 'x-a': '1', 'x-b': '1' });
  });

  it('hands every factory the context it is built with', () => {
    const seen: Array<FilterContext | undefined> = [];
    const factory: FilterFactory = {
      name: 'f',
      create: (_s, c) => {
        seen.push(c);
        return undefined;
      },
    };
    const context: FilterContext = { log: silentLogger, metrics: NO_FILTER_METRICS, explaining: true };
    FilterChain.build([factory, factory], snapshot, silentLogger, context);
    FilterChain.build([factory], snapshot, silentLogger);
    expect(seen.slice(0, 2)).toEqual([context, context]);
    expect(seen[2]).toEqual({ log: silentLogger, metrics: NO_FILTER_METRICS });
  });

  it('routes a TCP tunnel by the first filter that chooses, else leaves it to its binding', () => {
    const tunnel = {} as TunnelInfo;
    const cluster = { name: 'outbound|9080|v2|reviews.shop.svc.cluster.local' } as Cluster;
    const route = (n: string, r: ReturnType<NonNullable<Filter['onTcpRoute']>>): Filter => ({
      name: n,
      onTcpRoute: () => r,
    });
    const chain = (filters: Filter[]) => new FilterChain(filters, silentLogger);
    expect(chain([{ name: 'http-only' }]).tcpRoute(tunnel)).toBeUndefined();
    expect(chain([route('none', undefined), route('a', { cluster })]).tcpRoute(tunnel)).toEqual({ cluster });
    expect(chain([route('a', { invalid: 'no backend' }), route('b', { cluster })]).tcpRoute(tunnel)).toEqual({
      invalid: 'no backend',
    });
  });

  it("collects each filter's explanation, in chain order", () => {
    const explaining = (n: string): Filter => ({
      name: n,
      explain: (run) => ({ fields: { [n]: run.phase }, text: [n] }),
    });
    const run = { phase: 'tcp' as const, tunnel: {} as TunnelInfo, ctx: undefined, verdict: CONTINUE };
    const got = new FilterChain(
      [explaining('a'), { name: 'silent' }, explaining('b')],
      silentLogger,
    ).explanations(run);
    expect(got).toEqual([
      { fields: { a: 'tcp' }, text: ['a'] },
      { fields: { b: 'tcp' }, text: ['b'] },
    ]);
  });

  it('answers synchronously while every filter does, with no promise per request', () => {
    const chain = new FilterChain(
      [
        { name: 'a', onRequestHeaders: () => CONTINUE },
        { name: 'b', onRequestHeaders: () => ({ kind: 'reply', reason: 'route_not_found' }) },
      ],
      silentLogger,
    );
    expect(chain.onRequestHeaders(ctx())).toEqual({ kind: 'reply', reason: 'route_not_found' });
    expect(new FilterChain([], silentLogger).onRequestHeaders(ctx())).toBe(CONTINUE);
  });

  it('goes on after an async filter continues, and stops once the client is gone', async () => {
    const order: string[] = [];
    const abort = new AbortController();
    const filters = (abortOnAsync: boolean): Filter[] => [
      {
        name: 'async',
        onRequestHeaders: async () => {
          order.push('async');
          if (abortOnAsync) abort.abort();
          return CONTINUE;
        },
      },
      {
        name: 'after',
        onRequestHeaders: () => {
          order.push('after');
          return { kind: 'reply', reason: 'authz_denied' };
        },
      },
    ];
    const c = { ...ctx(), signal: abort.signal } as RequestContext;
    expect(await new FilterChain(filters(false), silentLogger).onRequestHeaders(c)).toMatchObject({
      reason: 'authz_denied',
    });
    expect(await new FilterChain(filters(true), silentLogger).onRequestHeaders(c)).toBe(CONTINUE);
    expect(order).toEqual(['async', 'after', 'async']);
  });

  it('turns a rejecting async filter into internal_error', async () => {
    const chain = new FilterChain(
      [{ name: 'late-boom', onRequestHeaders: () => Promise.reject(new Error('bug')) }],
      silentLogger,
    );
    expect(await chain.onRequestHeaders(ctx())).toMatchObject({
      kind: 'reply',
      reason: 'internal_error',
      detail: 'filter late-boom threw',
    });
  });
});
