// A minimal HTTP/1.1 response parser for the load generator: one response at a time on a
// keep-alive connection (no pipelining), bodies by content-length, chunked, or until close. It only
// counts body bytes; it never keeps them.

const CRLF2 = Buffer.from('\r\n\r\n');
const MAX_HEAD = 64 * 1024;

const HEAD = 0;
const BODY = 1;
const CHUNK_LINE = 2;
const CHUNK_DATA = 3;
const CHUNK_CRLF = 4;
const TRAILER = 5;
const UNTIL_CLOSE = 6;

export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

export interface ParsedResponse {
  readonly status: number;
  readonly bodyBytes: number;
  /** The server will close the connection (Connection: close, HTTP/1.0, or a body read to EOF). */
  readonly close: boolean;
}

export class ResponseParser {
  #state = HEAD;
  #pending: Buffer | undefined;
  #remaining = 0;
  #status = 0;
  #close = false;
  #bodyBytes = 0;

  /** True while a response has started but not finished. */
  get busy(): boolean {
    return this.#state !== HEAD || (this.#pending?.length ?? 0) > 0;
  }

  /**
   * Feeds bytes; returns the response once it is complete, else undefined. Bytes after a complete
   * response are an error: nothing was asked for.
   */
  feed(chunk: Buffer): ParsedResponse | undefined {
    let buf = chunk;
    let done: ParsedResponse | undefined;
    while (buf.length > 0) {
      if (done) throw new ProtocolError(`${buf.length} unexpected bytes after a response`);
      switch (this.#state) {
        case HEAD: {
          const joined = this.#pending ? Buffer.concat([this.#pending, buf]) : buf;
          const end = joined.indexOf(CRLF2);
          if (end < 0) {
            if (joined.length > MAX_HEAD) throw new ProtocolError('response head over 64 KiB');
            this.#pending = joined;
            return undefined;
          }
          this.#pending = undefined;
          buf = joined.subarray(end + 4);
          const interim = this.#parseHead(joined.toString('latin1', 0, end));
          if (interim) continue;
          if (this.#state === HEAD) done = this.#finish();
          break;
        }
        case BODY: {
          const n = Math.min(this.#remaining, buf.length);
          this.#bodyBytes += n;
          this.#remaining -= n;
          buf = buf.subarray(n);
          if (this.#remaining === 0) done = this.#finish();
          break;
        }
        case CHUNK_LINE:
        case CHUNK_CRLF:
        case TRAILER: {
          const joined = this.#pending ? Buffer.concat([this.#pending, buf]) : buf;
          const eol = joined.indexOf('\r\n');
          if (eol < 0) {
            if (joined.length > 4096) throw new ProtocolError('chunk line over 4 KiB');
            this.#pending = joined;
            return undefined;
          }
          this.#pending = undefined;
          const line = joined.toString('latin1', 0, eol);
          buf = joined.subarray(eol + 2);
          if (this.#state === CHUNK_CRLF) {
            if (line !== '') throw new ProtocolError('chunk data not followed by CRLF');
            this.#state = CHUNK_LINE;
          } else if (this.#state === TRAILER) {
            if (line === '') done = this.#finish();
          } else {
            const size = Number.parseInt(line.split(';')[0]!.trim(), 16);
            if (!Number.isInteger(size) || size < 0) throw new ProtocolError(`bad chunk size ${line}`);
            if (size === 0) this.#state = TRAILER;
            else {
              this.#remaining = size;
              this.#state = CHUNK_DATA;
            }
          }
          break;
        }
        case CHUNK_DATA: {
          const n = Math.min(this.#remaining, buf.length);
          this.#bodyBytes += n;
          this.#remaining -= n;
          buf = buf.subarray(n);
          if (this.#remaining === 0) this.#state = CHUNK_CRLF;
          break;
        }
        case UNTIL_CLOSE:
          this.#bodyBytes += buf.length;
          return undefined;
      }
    }
    return done;
  }

  /** The connection ended: completes a body read to EOF, else says a response was cut short. */
  end(): ParsedResponse | undefined {
    if (this.#state === UNTIL_CLOSE) return this.#finish();
    if (this.busy) throw new ProtocolError('connection closed mid-response');
    return undefined;
  }

  reset(): void {
    this.#state = HEAD;
    this.#pending = undefined;
    this.#remaining = 0;
  }

  /** Returns true for an interim 1xx response (skipped). */
  #parseHead(head: string): boolean {
    const m = /^HTTP\/1\.([01]) (\d{3})/.exec(head);
    if (!m) throw new ProtocolError(`bad status line ${JSON.stringify(head.slice(0, 40))}`);
    const status = Number(m[2]);
    if (status >= 100 && status < 200) return true;
    let length: number | undefined;
    let chunked = false;
    let close = m[1] === '0';
    // Only three headers matter; look for them in the lower-cased head instead of splitting it.
    const lower = head.toLowerCase();
    const value = (name: string): string | undefined => {
      const at = lower.indexOf(`\r\n${name}:`);
      if (at < 0) return undefined;
      const from = at + name.length + 3;
      const eol = lower.indexOf('\r\n', from);
      return lower.slice(from, eol < 0 ? undefined : eol).trim();
    };
    const cl = value('content-length');
    if (cl !== undefined) length = Number(cl);
    const te = value('transfer-encoding');
    if (te !== undefined) chunked = te.split(',').at(-1)!.trim() === 'chunked';
    const conn = value('connection');
    if (conn?.includes('close')) close = true;
    else if (conn?.includes('keep-alive')) close = false;
    this.#status = status;
    this.#close = close;
    this.#bodyBytes = 0;
    if (status === 204 || status === 304) this.#state = HEAD;
    else if (chunked) this.#state = CHUNK_LINE;
    else if (length !== undefined) {
      if (!Number.isInteger(length) || length < 0) throw new ProtocolError(`bad content-length ${length}`);
      this.#remaining = length;
      this.#state = length === 0 ? HEAD : BODY;
    } else {
      this.#state = UNTIL_CLOSE;
      this.#close = true;
    }
    return false;
  }

  #finish(): ParsedResponse {
    this.#state = HEAD;
    return { status: this.#status, bodyBytes: this.#bodyBytes, close: this.#close };
  }
}

/** The bytes of one HTTP/1.1 request with a fixed body (sent as one write). */
export function requestBytes(opts: {
  method: string;
  path: string;
  host: string;
  headers?: Readonly<Record<string, string>>;
  body?: Buffer;
}): Buffer {
  let head = `${opts.method} ${opts.path} HTTP/1.1\r\nhost: ${opts.host}\r\n`;
  for (const [k, v] of Object.entries(opts.headers ?? {})) head += `${k}: ${v}\r\n`;
  if (opts.body || opts.method === 'POST' || opts.method === 'PUT')
    head += `content-length: ${opts.body?.length ?? 0}\r\n`;
  head += '\r\n';
  return opts.body ? Buffer.concat([Buffer.from(head, 'latin1'), opts.body]) : Buffer.from(head, 'latin1');
}
