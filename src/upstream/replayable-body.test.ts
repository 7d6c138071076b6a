import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { isAttemptBody, wholeBody } from './attempt-body.ts';
import { ReplayableBody } from './replayable-body.ts';
import { drain } from './test-support.ts';

describe('ReplayableBody', () => {
  it('replays the whole body on a later attempt', async () => {
    const body = new ReplayableBody(Readable.from([Buffer.from('ab'), Buffer.from('cd')]), 16);
    expect(await drain(body.attempt())).toBe('abcd');
    expect(body.replayable).toBe(true);
    expect(await drain(body.attempt())).toBe('abcd');
  });

  it('replays what an abandoned attempt read, then continues with what the client sends next', async () => {
    const client = new PassThrough();
    const body = new ReplayableBody(client, 16);
    const first = body.attempt();
    client.write('ab');
    const got = await new Promise<Buffer>((r) => first.once('data', r));
    expect(got.toString()).toBe('ab');
    const second = body.attempt(); // the first is retired
    expect(first.destroyed).toBe(true);
    const text = drain(second);
    client.end('cd');
    expect(await text).toBe('abcd');
  });

  it('moves no more than the attempt can hold while nothing reads it (backpressure to the client)', async () => {
    const client = new PassThrough();
    const body = new ReplayableBody(client, 1024);
    const attempt = body.attempt();
    const first = new Promise((r) => attempt.once('data', r));
    attempt.resume();
    client.write(Buffer.alloc(100));
    await first;
    attempt.pause(); // a reader that stalls after its first read
    // The client keeps sending: every write raises 'readable' on its stream.
    for (let i = 0; i < 64; i++) {
      client.write(Buffer.alloc(4096, i));
      await new Promise((r) => setImmediate(r));
    }
    expect(attempt.readableLength).toBeLessThanOrEqual(attempt.readableHighWaterMark + 4096);
    expect(client.writableNeedDrain).toBe(true); // the client's stream says wait
    attempt.destroy();
    client.destroy();
  });

  it('stops keeping bytes past the cap and refuses another attempt', async () => {
    const body = new ReplayableBody(Readable.from([Buffer.alloc(10, 'a'), Buffer.alloc(10, 'b')]), 15);
    expect(await drain(body.attempt())).toBe('a'.repeat(10) + 'b'.repeat(10));
    expect(body.replayable).toBe(false);
    expect(body.bufferedBytes).toBe(0);
    expect(() => body.attempt()).toThrow(/not replayable/);
  });

  it('hands a body known to be over the cap straight through', () => {
    const source = Readable.from([Buffer.alloc(20)]);
    const body = new ReplayableBody(source, 15, 20);
    expect(body.replayable).toBe(false);
    expect(body.attempt()).toBe(source);
  });

  it('fails the attempt when the client body fails', async () => {
    const client = new PassThrough();
    const body = new ReplayableBody(client, 16);
    const text = drain(body.attempt());
    client.destroy(new Error('client reset'));
    await expect(text).rejects.toThrow(/client reset/);
  });

  it('carries a body already buffered to its content-length as one Buffer, on every attempt', async () => {
    const client = new PassThrough();
    client.end('hello');
    const body = new ReplayableBody(client, 16, 5);
    const first = body.attempt();
    expect(isAttemptBody(first)).toBe(true);
    expect(wholeBody(first)?.toString()).toBe('hello');
    // The client's stream still reaches its end although nothing reads it.
    await new Promise((r) => client.once('end', r));
    expect(wholeBody(body.attempt())?.toString()).toBe('hello');
    // A reader of the stream gets the same bytes.
    expect(await drain(body.attempt())).toBe('hello');
  });

  it('streams a body that is still arriving, and offers no Buffer for it', async () => {
    const client = new PassThrough();
    client.write('he');
    const body = new ReplayableBody(client, 16, 5);
    const first = body.attempt();
    expect(wholeBody(first)).toBeUndefined();
    const text = drain(first);
    client.end('llo');
    expect(await text).toBe('hello');
    expect(wholeBody(body.attempt())?.toString()).toBe('hello');
  });
});
