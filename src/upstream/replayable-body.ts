// A request body that can be sent again: the first attempt's bytes are kept as they stream out, up
// to a cap, so a retry replays them and then continues with whatever the client has not sent yet.
// Over the cap the kept bytes are dropped and the body can no longer be replayed: the request keeps
// streaming, without retry (never a 413 because of our own buffering, users-and-style.md A.18).
import { Readable } from 'node:stream';
import { markAttemptBody } from './attempt-body.ts';

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
  #failed: Error | undefined;
  #listening = false;
  #current: AttemptStream | undefined;
  #attempts = 0;
  readonly #knownLength: number | undefined;

  /** `knownLength`: the content-length, when given; a body known to be over the cap is not teed. */
  constructor(source: Readable, cap: number = DEFAULT_REPLAY_BUFFER_BYTES, knownLength?: number) {
    this.#source = source;
    this.#cap = cap;
    this.#overflowed = knownLength !== undefined && knownLength > cap;
    this.#knownLength = knownLength;
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
    const out = markAttemptBody(new AttemptStream(this), this.#whole());
    // The attempt's transport reports body failures; an attempt refused before reading never listens.
    out.on('error', noop);
    this.#current = out;
    return out;
  }

  /**
   * Pushes into `out` what it may take now: kept chunks from its position on, then whatever the
   * client has ready. Synchronous; when the client has nothing yet, its next 'readable' calls again.
   */
  pump(out: AttemptStream): void {
    if (out !== this.#current || out.destroyed) return;
    for (;;) {
      if (!this.#overflowed && out.position < this.#chunks.length) {
        if (!out.push(this.#chunks[out.position++]!)) {
          out.wanted = false;
          return;
        }
        continue;
      }
      if (this.#failed) {
        out.destroy(this.#failed);
        return;
      }
      if (this.#ended) {
        out.push(null);
        return;
      }
      // Full: the client's 'readable' must not move more in; the attempt's next _read pumps again.
      if (!out.wanted) return;
      const c = this.#source.read() as Buffer | null;
      if (c === null) {
        if (this.#source.readableEnded) this.#ended = true;
        else if (this.#source.destroyed)
          this.#fail(this.#source.errored ?? new Error('request body aborted'));
        else this.#listen();
        if (this.#ended || this.#failed) continue;
        return;
      }
      // Kept or not (over the cap), the chunk goes straight on to this attempt.
      if (this.#keep(c)) out.position = this.#chunks.length;
      if (!out.push(c)) {
        out.wanted = false;
        return;
      }
    }
  }

  /**
   * The whole body as one Buffer when it is in memory: kept to its end, or (first attempt) already
   * buffered by the client's stream to its content-length, so no stream needs to carry it.
   */
  #whole(): Buffer | undefined {
    if (this.#failed || this.#overflowed) return undefined;
    if (!this.#ended && this.#size === 0) this.#takeComplete();
    if (!this.#ended || this.#size === 0) return undefined;
    if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks, this.#size)];
    return this.#chunks[0];
  }

  /** Takes the body at once when the client's stream already holds all of its content-length. */
  #takeComplete(): void {
    const length = this.#knownLength;
    const source = this.#source;
    if (!length || source.readableLength < length || source.readableFlowing) return;
    const c = source.read() as Buffer | null;
    if (c === null) return;
    this.#keep(c);
    if (this.#size !== length) return; // more than announced: the stream path reports what follows
    this.#ended = true;
    // Let the stream reach its end (and say so) although nothing reads it any more; a failure
    // after its last byte is the client's to report, never an unhandled error here.
    source.on('error', noop);
    source.resume();
  }

  /** Keeps c while under the cap; false once over it (the kept bytes are dropped then). */
  #keep(c: Buffer): boolean {
    if (this.#overflowed) return false;
    this.#size += c.length;
    if (this.#size > this.#cap) {
      this.#overflowed = true;
      this.#chunks = [];
      return false;
    }
    this.#chunks.push(c);
    return true;
  }

  /** Listens to the client's stream once, for as long as this body lives. */
  #listen(): void {
    if (this.#listening) return;
    this.#listening = true;
    const source = this.#source;
    const wake = (): void => {
      if (this.#current) this.pump(this.#current);
    };
    source.on('readable', wake);
    source.once('end', () => {
      this.#ended = true;
      wake();
    });
    source.once('error', (err) => this.#fail(err));
    source.once('close', () => {
      if (!source.readableEnded) this.#fail(source.errored ?? new Error('request body aborted'));
    });
  }

  #fail(err: Error): void {
    this.#failed ??= err;
    if (this.#current && !this.#current.destroyed) this.#current.destroy(this.#failed);
  }
}

/** One attempt's view of the body: a plain Readable its ReplayableBody pushes into. */
class AttemptStream extends Readable {
  position = 0;
  /** True from a _read until a push says the stream is full. */
  wanted = false;
  readonly #body: ReplayableBody;

  constructor(body: ReplayableBody) {
    super();
    this.#body = body;
  }

  override _read(): void {
    this.wanted = true;
    this.#body.pump(this);
  }
}

function noop(): void {}
