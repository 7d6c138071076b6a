import { expect, it } from 'vitest';
import { isProxyError } from '../pipeline/proxy-error.ts';
import { pendingLimit } from './pending-limit.ts';
import type { UpstreamRequest, UpstreamResponse } from './types.ts';

const req = {} as UpstreamRequest;
const ctx = {} as never;

function held() {
  const releases: Array<() => void> = [];
  const next = () =>
    new Promise<UpstreamResponse>((resolve) => releases.push(() => resolve({} as UpstreamResponse)));
  return { next, releases };
}

it('refuses past maxPending with overload_pending_requests, and admits again once one is answered', async () => {
  const refused: string[] = [];
  const limit = pendingLimit({ maxPending: 2, onRefused: (l) => refused.push(l) });
  const { next, releases } = held();
  const send = limit.layer(next);
  const a = send(req, ctx);
  const b = send(req, ctx);
  expect(limit.pending()).toBe(2);
  const err = await send(req, ctx).catch((e: unknown) => e);
  expect(isProxyError(err) && err.reason).toBe('overload_pending_requests');
  expect(refused).toEqual(['pending_requests']);
  releases[0]!();
  await a;
  expect(limit.pending()).toBe(1);
  const c = send(req, ctx);
  releases[1]!();
  releases[2]!();
  await Promise.all([b, c]);
  expect(limit.pending()).toBe(0);
});

it('gives the slot back when the attempt fails', async () => {
  const limit = pendingLimit({ maxPending: 1 });
  const send = limit.layer(() => Promise.reject(new Error('boom')));
  await expect(send(req, ctx)).rejects.toThrow('boom');
  expect(limit.pending()).toBe(0);
});

it('sheds every new request with overload_heap while the heap is above high water', async () => {
  let shedding = true;
  const refused: string[] = [];
  const limit = pendingLimit({ maxPending: 10, shedding: () => shedding, onRefused: (l) => refused.push(l) });
  const send = limit.layer(async () => ({}) as UpstreamResponse);
  const err = await send(req, ctx).catch((e: unknown) => e);
  expect(isProxyError(err) && err.reason).toBe('overload_heap');
  shedding = false;
  await expect(send(req, ctx)).resolves.toEqual({});
  expect(refused).toEqual(['heap']);
});
