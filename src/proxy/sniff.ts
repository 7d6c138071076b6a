// Protocol detection for ports Istio cannot classify (no appProtocol, no known name prefix): read
// the first bytes, decide HTTP/2 (the client preface), HTTP/1.x (a whole request line) or opaque TCP,
// then put the bytes back for whoever takes the stream. Server-first protocols send nothing, so a
// quiet stream becomes TCP after a short wait.
import type { Readable } from 'node:stream';

export type Sniffed = 'http2' | 'http1' | 'tcp';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
/** How long to wait for a client's first bytes before treating the stream as server-first TCP. */
export const SNIFF_TIMEOUT_MS = 5_000;

/** Longest request line we wait for before calling the stream opaque (Envoy's inspector: 64 KiB). */
const MAX_REQUEST_LINE = 64 * 1024;
const HTTP1_VERSION = Buffer.from('HTTP/1.');

/**
 * HTTP/2 by its preface; HTTP/1.x only by a complete request line, `METHOD SP TARGET SP HTTP/1.d`
 * then CRLF (as Envoy's http_inspector parses it), so text protocols that merely start with an
 * upper-case word (Redis inline commands, SMTP, ...) stay TCP. undefined: need more bytes.
 */
export function classify(head: Buffer): Sniffed | undefined {
  const n = Math.min(head.length, H2_PREFACE.length);
  if (head.subarray(0, n).equals(H2_PREFACE.subarray(0, n)))
    return n === H2_PREFACE.length ? 'http2' : undefined;
  let part: 'method' | 'target' | 'version' = 'method';
  let partLength = 0;
  const end = Math.min(head.length, MAX_REQUEST_LINE);
  for (let i = 0; i < end; i++) {
    const c = head[i]!;
    if (part === 'method') {
      // Upper-case letters, '-' and '_' (M-SEARCH): the methods an HTTP/1 parser accepts.
      if (c === 0x20 && partLength > 0) {
        part = 'target';
        partLength = 0;
      } else if ((c >= 0x41 && c <= 0x5a) || ((c === 0x2d || c === 0x5f) && partLength > 0)) {
        if (++partLength > 32) return 'tcp';
      } else return 'tcp';
    } else if (part === 'target') {
      if (c === 0x20 && partLength > 0) {
        part = 'version';
        partLength = 0;
      } else if (c > 0x20 && c < 0x7f) partLength++;
      else return 'tcp';
    } else {
      // "HTTP/1.", one digit, optional CR, LF.
      if (partLength < HTTP1_VERSION.length) {
        if (c !== HTTP1_VERSION[partLength]) return 'tcp';
      } else if (partLength === HTTP1_VERSION.length) {
        if (c < 0x30 || c > 0x39) return 'tcp';
      } else if (c === 0x0a) return 'http1';
      else if (c !== 0x0d || partLength > HTTP1_VERSION.length + 1) return 'tcp';
      partLength++;
    }
  }
  return head.length >= MAX_REQUEST_LINE ? 'tcp' : undefined;
}

export interface SniffResult {
  readonly kind: Sniffed;
  /**
   * Set when the stream ended before a verdict (kind is then 'tcp'): everything it sent, which
   * cannot be put back into an ended stream. The consumer must send these bytes and the end on.
   */
  readonly leftover?: Buffer;
}

/** Resolves with the protocol once known; the bytes read are unshifted back into the stream. */
export function sniffStream(stream: Readable, timeoutMs = SNIFF_TIMEOUT_MS): Promise<SniffResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (kind: Sniffed, ended: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.pause();
      if (ended) {
        resolve({ kind, leftover: Buffer.concat(chunks) });
        return;
      }
      if (chunks.length > 0) stream.unshift(Buffer.concat(chunks));
      resolve({ kind });
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      const verdict = classify(chunks.length === 1 ? chunk : Buffer.concat(chunks));
      if (verdict) finish(verdict, false);
    };
    const onEnd = (): void => finish('tcp', true);
    const timer = setTimeout(() => finish('tcp', false), timeoutMs);
    timer.unref();
    stream.on('data', onData);
    stream.once('end', onEnd);
  });
}

/** The protocol only (bytes of a stream that ended before a verdict are dropped: see sniffStream). */
export async function sniff(stream: Readable, timeoutMs = SNIFF_TIMEOUT_MS): Promise<Sniffed> {
  return (await sniffStream(stream, timeoutMs)).kind;
}
