import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { classify, sniff } from './sniff.ts';

describe('classify', () => {
  it('recognizes the HTTP/2 preface only when complete', () => {
    expect(classify(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'))).toBe('http2');
    expect(classify(Buffer.from('PRI * HTTP/2'))).toBeUndefined();
  });
  it('recognizes an HTTP/1 request line by its method token', () => {
    expect(classify(Buffer.from('GET / HTTP/1.1\r\n'))).toBe('http1');
    expect(classify(Buffer.from('DELETE /x HTTP/1.0\r\n'))).toBe('http1');
    expect(classify(Buffer.from('GE'))).toBeUndefined();
  });
  it('calls anything else TCP', () => {
    expect(classify(Buffer.from([0x16, 0x03, 0x01, 0x00]))).toBe('tcp'); // a TLS ClientHello
    expect(classify(Buffer.from('get / HTTP/1.1'))).toBe('tcp');
    expect(classify(Buffer.from('A / x'))).toBe('tcp');
  });
});

describe('sniff', () => {
  it('puts the bytes it read back into the stream', async () => {
    const s = new PassThrough();
    s.write('GE');
    setTimeout(() => s.write('T / HTTP/1.1\r\n\r\n'), 5);
    expect(await sniff(s, 1000)).toBe('http1');
    s.resume();
    const first = await new Promise<Buffer>((r) => s.once('data', r));
    expect(first.toString()).toBe('GET / HTTP/1.1\r\n\r\n');
  });
  it('treats a silent stream as server-first TCP after the timeout', async () => {
    expect(await sniff(new PassThrough(), 20)).toBe('tcp');
  });
  it('treats a stream that ends before any decision as TCP', async () => {
    const s = new PassThrough();
    s.end('GE');
    expect(await sniff(s, 1000)).toBe('tcp');
  });
});
