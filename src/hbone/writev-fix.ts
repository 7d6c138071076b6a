// Works around a Node bug (seen on 24.21.0 and 20.20.2): Http2Stream's _writev can send the bytes
// of latin1 string chunks corrupted — Node's HTTP/1 server corks the status line (a string) with
// the first body Buffer, and the client received garbage in place of `HTTP/1.1 200 OK`. The repro
// is in bench/RESULTS.md. Every tunnel stream gets a _writev that joins the chunks into one Buffer:
// one DATA frame as before, with the right bytes.
import type { Duplex } from 'node:stream';

type Chunk = { chunk: Buffer | string; encoding: BufferEncoding };
type WritableInternals = {
  _write(chunk: Buffer, encoding: BufferEncoding, cb: (err?: Error | null) => void): void;
  _writev?: (chunks: Chunk[], cb: (err?: Error | null) => void) => void;
};

export function joinWritev(stream: Duplex): void {
  const s = stream as unknown as WritableInternals;
  s._writev = function joinedWritev(this: WritableInternals, chunks, cb) {
    const buffers = chunks.map((c) =>
      typeof c.chunk === 'string' ? Buffer.from(c.chunk, c.encoding) : c.chunk,
    );
    this._write(buffers.length === 1 ? buffers[0]! : Buffer.concat(buffers), 'buffer', cb);
  };
}
