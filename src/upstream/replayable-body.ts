// A request body that can be sent again: the first attempt's bytes are kept as they stream out, up
// to a cap, so a retry replays them and then continues with whatever the client has not sent yet.
// Over the cap the kept bytes are dropped and the body can no longer be replayed: the request keeps
// streaming, without retry (never a 413 because of our own buffering, users-and-style.md A.18).
import { Readable } from 'node:stream';
import { readChunk } from '../proxy/read-chunk.ts';

/**
 * Bytes kept for replay per request. Envoy's per_request_buffer_limit is 16 KiB with a 1 MiB
 * listener limit; 64 KiB covers typical JSON and form posts while bounding memory per request.
 */
export const DEFAULT_REPLAY_BUFFER_BYTES = 64 * 1024;

export class ReplayableBody {
  readonly #source: Readable;
  readonly #cap: number;
  #chunks: Buffer[] = [];
  #size = 0;
  #overflowed: boolean;
  #ended = false;
  #pending: Promise<Buffer | null> | undefined;
  #current: Readable | undefined;
  #attempts = 0;

  /** `knownLength`: the content-length, when given; a body known to be over the cap is not teed. */
  constructor(source: Readable, cap: number = DEFAULT_REPLAY_BUFFER_BYTES, knownLength?: number) {
    this.#source = source;
    this.#cap = cap;
    this.#overflowed = knownLength !== undefined && knownLength > cap;
  }

  /** True while every byte read so far is kept, so another attempt can start from byte 0. */
  get replayable(): boolean {
    return !this.#overflowed;
  }

  /** Bytes read from the client so far and kept for replay. */
  get bufferedBytes(): number {
    return this.#overflowed ? 0 : this.#size;
  }

  /**
   * A fresh body stream for the next attempt, starting at byte 0. The previous attempt's stream is
   * destroyed: it no longer pulls from the client. Throws when the body is not replayable and an
   * attempt already consumed it.
   */
  attempt(): Readable {
    if (this.#attempts > 0 && this.#overflowed) throw new Error('request body is not replayable');
    this.#attempts++;
    this.#current?.destroy();
    // Over the cap from the start: the client's stream itself, untouched.
    if (this.#overflowed) return this.#source;
    let pos = 0;
    let busy = false;
    const next = async (): Promise<Buffer | null> => {
      for (;;) {
        if (!this.#overflowed && pos < this.#chunks.length) return this.#chunks[pos++]!;
        if (this.#ended) return null;
        const c = await this.#fetch();
        if (c === null) return null;
        if (this.#overflowed) return c; // no longer kept: hand it straight on
      }
    };
    const out: Readable = new Readable({
      read() {
        if (busy) return;
        busy = true;
        next().then(
          (c) => {
            busy = false;
            if (!out.destroyed) out.push(c);
          },
          (err: unknown) => {
            busy = false;
            out.destroy(err instanceof Error ? err : new Error(String(err)));
          },
        );
      },
    });
    // The attempt's transport reports body failures; an attempt refused before reading never listens.
    out.on('error', () => {});
    this.#current = out;
    return out;
  }

  /** One read from the client shared by whoever asks; the chunk is kept while under the cap. */
  #fetch(): Promise<Buffer | null> {
    this.#pending ??= readChunk(this.#source).then(
      (c) => {
        this.#pending = undefined;
        if (c === null) {
          this.#ended = true;
        } else if (!this.#overflowed) {
          this.#size += c.length;
          if (this.#size > this.#cap) {
            this.#overflowed = true;
            this.#chunks = [];
          } else {
            this.#chunks.push(c);
          }
        }
        return c;
      },
      (err: unknown) => {
        this.#pending = undefined;
        throw err;
      },
    );
    return this.#pending;
  }
}
