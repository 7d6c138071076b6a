import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { RequestBody } from './request-body.ts';

/** Numbered bytes, so any reordering or loss shows. */
const pattern = (n: number): Buffer =>
  Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + (i >> 8)) & 0xff));

function chunked(data: Buffer, size: number): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) chunks.push(data.subarray(i, i + size));
  return Readable.from(chunks, { objectMode: false });
}

async function drain(r: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of r) out.push(c as Buffer);
  return Buffer.concat(out);
}

describe('RequestBody', () => {
  it('no body: readBody resolves at once, empty and complete; nothing goes upstream', async () => {
    const b = new RequestBody(null);
    expect(await b.read(10)).toEqual({ bytes: Buffer.alloc(0), complete: true });
    expect(b.upstream()).toBeNull();
  });

  it('unread: the upstream body is the client stream itself', () => {
    const src = new PassThrough();
    expect(new RequestBody(src).upstream()).toBe(src);
  });

  it('a body shorter than the limit: all of it, complete, replayed whole', async () => {
    const data = pattern(1000);
    const b = new RequestBody(chunked(data, 64));
    const p = await b.read(4096);
    expect(p.complete).toBe(true);
    expect(p.bytes.equals(data)).toBe(true);
    expect((await drain(b.upstream()!)).equals(data)).toBe(true);
  });

  it('a body of exactly the limit is complete', async () => {
    const data = pattern(256);
    const b = new RequestBody(chunked(data, 64));
    const p = await b.read(256);
    expect(p.complete).toBe(true);
    expect(p.bytes.equals(data)).toBe(true);
    expect((await drain(b.upstream()!)).equals(data)).toBe(true);
  });

  it('a body larger than the limit: exactly the limit, not complete; upstream gets every byte in order', async () => {
    const data = pattern(100_000);
    const b = new RequestBody(chunked(data, 3000));
    const p = await b.read(4500); // cuts a chunk in the middle
    expect(p.complete).toBe(false);
    expect(p.bytes.length).toBe(4500);
    expect(p.bytes.equals(data.subarray(0, 4500))).toBe(true);
    const again = await b.read(10);
    expect(again).toBe(p);
    expect((await drain(b.upstream()!)).equals(data)).toBe(true);
  });

  it('a limit of 0 only tells whether there is a body', async () => {
    const data = pattern(10);
    const b = new RequestBody(chunked(data, 10));
    const p = await b.read(0);
    expect(p).toEqual({ bytes: Buffer.alloc(0), complete: false });
    expect((await drain(b.upstream()!)).equals(data)).toBe(true);
  });

  it('backpressure: a slow consumer keeps the client stream from being read ahead', async () => {
    const src = new PassThrough({ highWaterMark: 1024 });
    const b = new RequestBody(src);
    const data = pattern(64 * 1024);
    let written = 0;
    // The producer writes only while the source accepts (as a socket would under flow control).
    const produce = async (): Promise<void> => {
      for (let i = 0; i < data.length; i += 512) {
        written = i + 512;
        if (!src.write(data.subarray(i, i + 512))) await new Promise((r) => src.once('drain', r));
      }
      src.end();
    };
    const producing = produce();
    const p = await b.read(2048);
    expect(p.bytes.equals(data.subarray(0, 2048))).toBe(true);
    const up = b.upstream()!;
    // Nobody reads the upstream body: the producer is held back well before the end.
    await new Promise((r) => setTimeout(r, 50));
    expect(written).toBeLessThan(16 * 1024);
    const out: Buffer[] = [];
    await pipeline(
      up,
      new Writable({
        highWaterMark: 256,
        write(chunk: Buffer, _enc, cb) {
          out.push(chunk);
          setImmediate(cb);
        },
      }),
    );
    await producing;
    expect(Buffer.concat(out).equals(data)).toBe(true);
  });

  it('a client body that fails rejects readBody and fails the upstream body', async () => {
    const src = new PassThrough();
    const b = new RequestBody(src);
    src.write(pattern(10));
    const read = b.read(100);
    setImmediate(() => src.destroy(new Error('client gone')));
    await expect(read).rejects.toThrow('client gone');
    await expect(drain(b.upstream()!)).rejects.toThrow('client gone');
  });

  it('a replay its consumer abandoned does not throw when the client fails (the one-request crash class)', async () => {
    const src = new PassThrough();
    const b = new RequestBody(src);
    src.write('abc');
    await b.read(2);
    const up = b.upstream()!;
    up.read(); // an upstream starts reading, then gives up without listening for errors
    await new Promise((r) => setImmediate(r));
    src.destroy(new Error('client reset'));
    await new Promise((r) => up.once('close', r));
    expect(up.errored?.message).toBe('client reset');
  });
});
