// Works around a Node bug (seen on 24.21.0 and 20.20.2) that corrupts tunnel bytes. Http2Stream
// ties a batched write (_writev) to its last chunk and completes it when nghttp2 takes that chunk;
// a zero-length last chunk is taken at once, before the earlier chunks are sent. The batch's
// storage (where Node copied its string chunks) is freed and reused while nghttp2 still points at
// it, and the peer receives the first bytes of the batch overwritten. Node's HTTP/1 server writes
// exactly such a batch: the status line (a latin1 string), the body, then res.end()'s empty
// string, so the client got garbage in place of `HTTP/1.1 200 OK` (repro in bench/RESULTS.md).
// Measured on that repro, 200 responses each: as is 200 corrupted; empty chunk as an empty Buffer
// 199; empty chunk moved first 0; empty chunks dropped 0. Empty chunks carry nothing, so every
// tunnel stream drops them before Node sees the batch (no copy of the rest).
import type { Duplex } from 'node:stream';

type Chunk = { chunk: Buffer | string; encoding: BufferEncoding };
type Callback = (err?: Error | null) => void;
type WritableInternals = { _writev?: (chunks: Chunk[], cb: Callback) => void; [FIXED]?: true };

const FIXED = Symbol('writevFix');

/** Installs the workaround on one tunnel stream (idempotent). */
export function fixWritev(stream: Duplex): void {
  const s = stream as unknown as WritableInternals;
  const writev = s._writev;
  if (s[FIXED] || typeof writev !== 'function') return;
  s[FIXED] = true;
  s._writev = function droppingEmptyChunks(this: WritableInternals, chunks, cb) {
    if (!chunks.some((c) => c.chunk.length === 0)) {
      writev.call(this, chunks, cb);
      return;
    }
    const kept = chunks.filter((c) => c.chunk.length > 0);
    if (kept.length === 0) cb();
    else writev.call(this, kept, cb);
  };
}
