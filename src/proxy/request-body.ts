// The request body as filters may see it: a bounded prefix read before the request goes upstream
// (ext_authz's with_request_body), after which the body sent upstream replays those bytes and
// continues with the rest of the client's stream, with backpressure. Bytes read past the limit are
// pushed back into the client's stream (unshift), so no more than the limit is ever held here.
import { Readable } from 'node:stream';
import type { BodyPrefix } from '../pipeline/context.ts';
import { readChunk } from './read-chunk.ts';

const EMPTY: BodyPrefix = { bytes: Buffer.alloc(0), complete: true };

export class RequestBody {
  readonly #source: Readable | null;
  #prefix: Promise<BodyPrefix> | undefined;
  #upstream: Readable | undefined;

  /** `source`: the client's body stream, null when the request has none. */
  constructor(source: Readable | null) {
    this.#source = source;
  }

  /**
   * Reads the body up to `maxBytes` (or to its end, if shorter). `complete` is true when the bytes
   * are the whole body. The first call decides the limit; later calls return the same result.
   * Rejects when the client's body fails (the client went away).
   */
  read(maxBytes: number): Promise<BodyPrefix> {
    if (!this.#source) return Promise.resolve(EMPTY);
    this.#prefix ??= this.#readPrefix(this.#source, Math.max(0, Math.floor(maxBytes)));
    return this.#prefix;
  }

  async #readPrefix(src: Readable, max: number): Promise<BodyPrefix> {
    const chunks: Buffer[] = [];
    let size = 0;
    for (;;) {
      const c = await readChunk(src);
      if (c === null) return { bytes: Buffer.concat(chunks, size), complete: true };
      const room = max - size;
      if (c.length <= room) {
        chunks.push(c);
        size += c.length;
        continue; // at exactly max, one more read tells whether the body ends here
      }
      if (room > 0) {
        chunks.push(c.subarray(0, room));
        size += room;
      }
      src.unshift(c.subarray(room));
      return { bytes: Buffer.concat(chunks, size), complete: false };
    }
  }

  /**
   * The body to send upstream: the client's stream itself when nothing read it, otherwise a
   * stream of the prefix followed by the rest of the client's stream. Null when there is no body.
   */
  upstream(): Readable | null {
    const src = this.#source;
    if (!src || !this.#prefix) return src;
    this.#upstream ??= this.#replay(src, this.#prefix);
    return this.#upstream;
  }

  #replay(src: Readable, prefix: Promise<BodyPrefix>): Readable {
    let pending: Buffer | undefined;
    let started = false;
    let busy = false;
    const out = new Readable({
      read() {
        if (busy) return;
        busy = true;
        const next = async (): Promise<Buffer | null> => {
          if (!started) {
            started = true;
            const p = await prefix;
            pending = p.bytes.length > 0 ? p.bytes : undefined;
          }
          if (pending) {
            const c = pending;
            pending = undefined;
            return c;
          }
          return readChunk(src);
        };
        next().then(
          (c) => {
            busy = false;
            out.push(c); // push() calls read() again while the consumer wants more
          },
          (err: unknown) => {
            busy = false;
            out.destroy(err instanceof Error ? err : new Error(String(err)));
          },
        );
      },
    });
    // Its consumer (an upstream) reports failures itself; an upstream that refused the request
    // never reads this stream, and its error must not be uncaught.
    out.on('error', () => {});
    return out;
  }
}
