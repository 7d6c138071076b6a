// The primary's start and stop with stand-in workers (test/helpers/fake-worker.ts): it says
// "waypoint listening" only once every worker listens, a SIGTERM while workers still start stops
// them cleanly, and a worker that cannot start fails the run before the primary binds a port.
// Address: 127.46.0.2 (free ports; 15020 taken by the test itself; 15008 named, never bound).
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../observe/logger.ts';
import { Primary } from './primary.ts';

const IP = '127.46.0.2';
const FAKE = fileURLToPath(new URL('../../test/helpers/fake-worker.ts', import.meta.url));

function primary(argv: string[], port = 0): { primary: Primary; log: () => string } {
  let out = '';
  const listen = { host: IP, port };
  const p = new Primary({
    concurrency: 2,
    argv,
    env: process.env,
    // HBONE on a fixed port (the stand-ins bind nothing): the workers are forked within start()'s call.
    listen: { hbone: { host: IP, port: 15008 }, admin: listen, ready: listen, metrics: listen },
    drainDeadlineMs: 1_000,
    log: createLogger('info', (l) => (out += l)),
    script: FAKE,
  });
  return { primary: p, log: () => out };
}

describe('Primary', () => {
  it('says "waypoint listening" once every worker listens, and exits clean when they drain', async () => {
    const { primary: p, log } = primary([]);
    await p.start();
    expect(log()).toMatch(/"msg":"waypoint listening"[^\n]*"gateway":"shop\/waypoint"[^\n]*"workers":2/);
    expect(await p.stop()).toBe(true);
  });

  it('stops workers still starting on a SIGTERM: start() ends quietly, the stop is clean', async () => {
    const { primary: p, log } = primary(['--hang']);
    const started = p.start();
    expect(p.slots).toHaveLength(2);
    await Promise.all(p.slots.map((s) => new Promise((r) => s.child.once('spawn', r))));
    expect(await p.stop()).toBe(true);
    await expect(started).resolves.toBeUndefined();
    expect(log()).not.toContain('waypoint listening');
  });

  it('fails the start on a worker that cannot start, before it binds its own ports', async () => {
    // Its ports are taken: a primary that bound first would fail on them instead.
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(15020, IP, r));
    try {
      const { primary: p } = primary(['--fail'], 15020);
      await expect(p.start()).rejects.toThrow(/worker \d exited 1 before listening/);
    } finally {
      await new Promise((r) => taken.close(r));
    }
  });
});
