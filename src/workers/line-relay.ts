// A worker's stdout or stderr copied to the primary's in whole lines, so the access log and the
// logs of N workers stay one stream with no line cut by another worker's. Each write is a run of
// complete lines; a partial tail waits for its newline. Backpressure: the worker's pipe pauses
// while the primary's stream is full.
import type { Readable, Writable } from 'node:stream';

const NL = 0x0a;
/** A "line" longer than this is written as it is (with a newline) rather than held. */
const MAX_LINE = 1 << 20;

/**
 * Says which worker wrote each JSON log line: `{"worker":N,...}` (a log line is one JSON object;
 * anything else passes unchanged).
 */
export function tagJsonLines(worker: number): (lines: Buffer) => Buffer {
  const tag = `{"worker":${worker},`;
  return (lines) =>
    Buffer.from(
      lines
        .toString('utf8')
        .split('\n')
        .map((l) => (l.startsWith('{"') ? tag + l.slice(1) : l))
        .join('\n'),
    );
}

export function relayLines(from: Readable, to: Writable, edit: (lines: Buffer) => Buffer = (b) => b): void {
  let tail: Buffer | undefined;
  from.on('data', (chunk: Buffer) => {
    const last = chunk.lastIndexOf(NL);
    if (last === -1) {
      tail = tail ? Buffer.concat([tail, chunk]) : chunk;
      if (tail.length > MAX_LINE) {
        to.write(edit(Buffer.concat([tail, Buffer.from('\n')])));
        tail = undefined;
      }
      return;
    }
    const lines = chunk.subarray(0, last + 1);
    const ok = to.write(edit(tail ? Buffer.concat([tail, lines]) : lines));
    tail = last + 1 < chunk.length ? chunk.subarray(last + 1) : undefined;
    if (!ok) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  });
  // A last line without its newline still gets out, whole.
  from.on('end', () => {
    if (tail) to.write(edit(Buffer.concat([tail, Buffer.from('\n')])));
    tail = undefined;
  });
  from.on('error', () => {});
}
