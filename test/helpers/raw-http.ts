// Reading HTTP/1.x responses off a raw stream (a tunnel written to byte by byte), for tests that
// send what no well-behaved client would.
import type { Duplex } from 'node:stream';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * Reads HTTP/1.x responses off a raw stream: `count` final responses (1xx are returned too, in
 * order), bodies by content-length or until the connection ends.
 */
export class ResponseReader {
  #buf = Buffer.alloc(0);
  #ended = false;
  #waiters: Array<() => void> = [];

  constructor(stream: Duplex) {
    stream.on('data', (c: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, c]);
      this.#wake();
    });
    stream.on('end', () => {
      this.#ended = true;
      this.#wake();
    });
    stream.on('close', () => {
      this.#ended = true;
      this.#wake();
    });
    stream.on('error', () => {});
  }

  get ended(): boolean {
    return this.#ended;
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  async #more(deadline: number): Promise<void> {
    if (this.#ended) throw new Error(`stream ended; unread: ${JSON.stringify(this.#buf.toString('latin1'))}`);
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out; unread: ${JSON.stringify(this.#buf.toString('latin1'))}`);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, left);
      this.#waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  async next(timeoutMs = 5_000): Promise<RawResponse> {
    const deadline = Date.now() + timeoutMs;
    let end = this.#buf.indexOf('\r\n\r\n');
    while (end < 0) {
      await this.#more(deadline);
      end = this.#buf.indexOf('\r\n\r\n');
    }
    const head = this.#buf.subarray(0, end).toString('latin1').split('\r\n');
    this.#buf = this.#buf.subarray(end + 4);
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0]!)?.[1]);
    const headers: Record<string, string> = {};
    for (const line of head.slice(1)) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    if (status < 200 || status === 204 || status === 304) return { status, headers, body: Buffer.alloc(0) };
    if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      while (this.#buf.length < n) await this.#more(deadline);
      const body = this.#buf.subarray(0, n);
      this.#buf = this.#buf.subarray(n);
      return { status, headers, body };
    }
    if (headers['transfer-encoding'] === 'chunked') {
      const parts: Buffer[] = [];
      for (;;) {
        let eol = this.#buf.indexOf('\r\n');
        while (eol < 0) {
          await this.#more(deadline);
          eol = this.#buf.indexOf('\r\n');
        }
        const size = Number.parseInt(this.#buf.subarray(0, eol).toString('latin1'), 16);
        while (this.#buf.length < eol + 2 + size + 2) await this.#more(deadline);
        parts.push(this.#buf.subarray(eol + 2, eol + 2 + size));
        this.#buf = this.#buf.subarray(eol + 2 + size + 2);
        if (size === 0) return { status, headers, body: Buffer.concat(parts) };
      }
    }
    // Close-delimited.
    while (!this.#ended) await this.#more(deadline).catch(() => {});
    const body = this.#buf;
    this.#buf = Buffer.alloc(0);
    return { status, headers, body };
  }

  /** Resolves once the peer has closed the connection. */
  async closed(timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#ended)
      await this.#more(deadline).catch((e: Error) => {
        if (!this.#ended) throw e;
      });
  }
}
