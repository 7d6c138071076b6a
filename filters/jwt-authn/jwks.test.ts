import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { JwksCache, JwksFetchError } from './jwks.ts';

let server: http.Server;
let base: string;
let hits = 0;
let status = 200;
let delayMs = 0;

beforeAll(async () => {
  server = http.createServer((_req, res) => {
    hits++;
    setTimeout(() => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end('{"keys":[]}');
    }, delayMs);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.103.1', () => r()));
  base = `http://127.0.103.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

it('caches, shares one fetch, rate-limits refreshes and refetches when stale', async () => {
  let now = 0;
  const cache = new JwksCache({ cacheMs: 1000, cooldownMs: 100, now: () => now });
  const uri = `${base}/a`;
  const before = hits; // the server counts every case's fetches
  const [a, b] = await Promise.all([cache.keys(uri, 1000), cache.keys(uri, 1000)]);
  expect(a).toBe(b);
  expect(hits - before).toBe(1);
  expect(await cache.refresh(uri, 1000)).toBeUndefined();
  now = 150;
  expect(await cache.refresh(uri, 1000)).toBeDefined();
  expect(hits - before).toBe(2);
  now = 2000;
  await cache.keys(uri, 1000);
  expect(cache.fetchCount(uri)).toBe(3);
});

it('fails a fetch on a bad status or timeout, then fails fast within the cooldown', async () => {
  let now = 0;
  const cache = new JwksCache({ cooldownMs: 100, now: () => now });
  status = 500;
  await expect(cache.keys(`${base}/b`, 1000)).rejects.toBeInstanceOf(JwksFetchError);
  const before = hits;
  await expect(cache.keys(`${base}/b`, 1000)).rejects.toThrow(/failed recently/);
  expect(hits).toBe(before);
  status = 200;
  delayMs = 300;
  now = 200;
  await expect(cache.keys(`${base}/b`, 50)).rejects.toBeInstanceOf(JwksFetchError);
  delayMs = 0;
});
