// Protocol detection for ports Istio cannot classify (no appProtocol, no known name prefix): read
// the first bytes, decide HTTP/2 (the client preface), HTTP/1.x (a request line) or opaque TCP,
// then put the bytes back for whoever takes the stream. Server-first protocols send nothing, so a
// quiet stream becomes TCP after a short wait.
import type { Readable } from 'node:stream';

export type Sniffed = 'http2' | 'http1' | 'tcp';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
/** How long to wait for a client's first bytes before treating the stream as server-first TCP. */
export const SNIFF_TIMEOUT_MS = 5_000;

export function classify(head: Buffer): Sniffed | undefined {
  const n = Math.min(head.length, H2_PREFACE.length);
  if (head.subarray(0, n).equals(H2_PREFACE.subarray(0, n)))
    return n === H2_PREFACE.length ? 'http2' : undefined;
  // An HTTP/1 request line starts with a method token (upper-case letters) and a space.
  for (let i = 0; i < head.length && i < 24; i++) {
    const c = head[i]!;
    if (c === 0x20) return i >= 3 ? 'http1' : 'tcp';
    if (c < 0x41 || c > 0x5a) return 'tcp';
  }
  return head.length >= 24 ? 'tcp' : undefined;
}

/** Resolves with the protocol once known; the bytes read are unshifted back into the stream. */
export function sniff(stream: Readable, timeoutMs = SNIFF_TIMEOUT_MS): Promise<Sniffed> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (result: Sniffed): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.pause();
      if (chunks.length > 0) stream.unshift(Buffer.concat(chunks));
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      const verdict = classify(chunks.length === 1 ? chunk : Buffer.concat(chunks));
      if (verdict) finish(verdict);
    };
    const onEnd = (): void => finish('tcp');
    const timer = setTimeout(() => finish('tcp'), timeoutMs);
    timer.unref();
    stream.on('data', onData);
    stream.once('end', onEnd);
  });
}
