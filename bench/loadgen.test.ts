// The bench's load generator against a local server that answers every request after a fixed
// delay: the schedule (slots, counts, bounds) and the coordinated-omission correction. Assertions
// are on counts and on latencies being at least the injected delay, never on speed.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResponseParser } from './http1.ts';
import { runLoad } from './loadgen.ts';

const HOST = '127.0.0.1';

describe('bench load generator', () => {
  let server: http.Server;
  let port = 0;
  let received = 0;
  let delayMs = 0;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      received++;
      const arrived = performance.now();
      req.resume();
      req.on('end', () => {
        // Timers may fire a little early by performance.now(); wait until the full delay has passed.
        const answer = (): void => {
          const left = delayMs - (performance.now() - arrived);
          if (left > 0) setTimeout(answer, Math.ceil(left));
          else res.end('ok');
        };
        answer();
      });
    });
    await new Promise<void>((r) => server.listen(0, HOST, () => r()));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );

  it('sends on the constant-rate schedule, staggered per connection, one request in flight each', async () => {
    received = 0;
    delayMs = 20;
    const r = await runLoad({
      host: HOST,
      port,
      connections: 2,
      rate: 20, // 10/s per connection: a slot every 100 ms, the second connection 50 ms after the first
      durationMs: 1_000,
      method: 'POST',
      path: '/',
      body: Buffer.alloc(1024, 1),
      trace: true,
    });
    expect(r.mode).toBe('constant-rate');
    // 10 slots per connection in the window; every one is either answered or reported unsent.
    expect(r.completed + r.unsent + r.errors.reset + r.errors.timeout + r.errors.protocol).toBe(20);
    expect(r.completed).toBeGreaterThan(0);
    expect(r.ok).toBe(r.completed);
    expect(received).toBe(r.completed);
    const trace = r.trace!;
    expect(trace.length).toBe(r.completed);
    for (const t of trace) {
      expect(t.scheduled).toBeCloseTo(t.conn * 50 + t.k * 100, 6);
      // Node's timers count whole milliseconds from the event loop's cached clock, which can be up
      // to a millisecond stale: one fires up to ~2 ms early by performance.now() (1.54 seen).
      expect(t.sent).toBeGreaterThanOrEqual(t.scheduled - 2);
      expect(t.done - t.sent).toBeGreaterThanOrEqual(20);
    }
    // No pipelining: a connection's requests never overlap.
    for (const conn of [0, 1]) {
      const mine = trace.filter((t) => t.conn === conn).sort((a, b) => a.k - b.k);
      for (let i = 1; i < mine.length; i++) expect(mine[i]!.sent).toBeGreaterThanOrEqual(mine[i - 1]!.done);
    }
    expect(r.latency.count).toBe(r.completed);
    expect(r.latency.min).toBeGreaterThanOrEqual(20);
    expect(r.service.min).toBeGreaterThanOrEqual(20);
  });

  it('counts latency from the scheduled time when answers are slower than the schedule', async () => {
    received = 0;
    delayMs = 50;
    // One connection asked for 100 req/s (a slot every 10 ms) against a 50 ms server: request k is
    // due at 10k ms but cannot go before about 50k ms, so its latency is at least 50 + 40k ms.
    const r = await runLoad({
      host: HOST,
      port,
      connections: 1,
      rate: 100,
      durationMs: 10_000,
      maxRequests: 8,
      trace: true,
    });
    expect(r.completed).toBe(8);
    expect(received).toBe(8);
    for (const t of r.trace!) {
      expect(t.done - t.scheduled).toBeGreaterThanOrEqual(50 + 40 * t.k);
      expect(t.done - t.sent).toBeGreaterThanOrEqual(50);
    }
    expect(r.service.min).toBeGreaterThanOrEqual(50);
    // The HDR histogram's resolution is 3 significant digits: allow 0.1 %.
    expect(r.latency.max).toBeGreaterThanOrEqual((50 + 40 * 7) * 0.999);
    expect(r.latency.min).toBeGreaterThanOrEqual(50 * 0.999);
    // Without the correction the worst request would look like the others (about 50 ms).
    expect(r.latency.max - r.service.max).toBeGreaterThanOrEqual(40 * 7 * 0.999);
    expect(r.sendLag.max).toBeGreaterThanOrEqual(40 * 7 * 0.999);
  });

  it('still sends slots due inside the window after it closes, and counts them from their slot', async () => {
    received = 0;
    delayMs = 30;
    // One connection, a slot every 20 ms for 200 ms (10 slots), a 30 ms server: the last slots are
    // due before the window ends but can only go out after it; they are sent and measured.
    const r = await runLoad({ host: HOST, port, connections: 1, rate: 50, durationMs: 200, trace: true });
    expect(r.completed).toBe(10);
    expect(r.unsent).toBe(0);
    expect(received).toBe(10);
    const last = r.trace!.at(-1)!;
    expect(last.k).toBe(9);
    expect(last.scheduled).toBeLessThan(200);
    expect(last.sent).toBeGreaterThanOrEqual(9 * 30);
    expect(last.done - last.scheduled).toBeGreaterThanOrEqual(10 * 30 - 9 * 20);
    expect(r.latency.max).toBeGreaterThanOrEqual((10 * 30 - 9 * 20) * 0.999);
  });

  it('stops a closed loop at the end of its window and leaves out the warmup', async () => {
    received = 0;
    delayMs = 10;
    const r = await runLoad({
      host: HOST,
      port,
      connections: 2,
      rate: 0,
      warmupMs: 100,
      durationMs: 300,
      trace: true,
    });
    expect(r.mode).toBe('closed-loop');
    // Each connection completes at most one request per 10 ms, in warmup or window.
    expect(r.completed).toBeLessThanOrEqual(2 * (300 / 10 + 1));
    expect(r.completed).toBeGreaterThan(0);
    expect(received).toBe(r.completed + r.warmupRequests);
    expect(r.trace!.filter((t) => !t.measured).length).toBe(r.warmupRequests);
    for (const t of r.trace!) {
      if (t.measured) expect(t.sent).toBeGreaterThanOrEqual(100);
      if (t.measured) expect(t.sent).toBeLessThan(400);
    }
    expect(r.latency.min).toBeGreaterThanOrEqual(10 * 0.999);
  });
});

describe('bench HTTP/1.1 response parser', () => {
  it('reads content-length and chunked bodies split anywhere', () => {
    const raw = Buffer.from(
      'HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello' +
        'HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\nt: v\r\n\r\n' +
        'HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n',
    );
    const p = new ResponseParser();
    const got: Array<{ status: number; bodyBytes: number; close: boolean }> = [];
    // One byte at a time: every boundary is a split point.
    for (let i = 0; i < raw.length; i++) {
      const r = p.feed(raw.subarray(i, i + 1));
      if (r) got.push(r);
    }
    expect(got).toEqual([
      { status: 200, bodyBytes: 5, close: false },
      { status: 201, bodyBytes: 5, close: false },
      { status: 204, bodyBytes: 0, close: true },
    ]);
  });
});
