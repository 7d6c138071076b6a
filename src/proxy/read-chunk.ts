// Reading a body stream one chunk at a time without switching it to flowing mode: shared by the
// request-body prefix reader (filters' readBody) and the retry layer's replay buffer.
import type { Readable } from 'node:stream';

/**
 * The next chunk of `src` (null at its end), read in paused mode: no 'data' listener is left
 * behind, so the stream can later be piped or resumed as if it had never been touched.
 */
export function readChunk(src: Readable): Promise<Buffer | null> {
  const now = src.read() as Buffer | null;
  if (now !== null) return Promise.resolve(now);
  if (src.readableEnded) return Promise.resolve(null);
  if (src.destroyed) return Promise.reject(src.errored ?? new Error('request body aborted'));
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      src.off('readable', onReadable);
      src.off('end', onEnd);
      src.off('error', onError);
      src.off('close', onClose);
    };
    const onReadable = (): void => {
      const c = src.read() as Buffer | null;
      if (c === null) return; // at the end: 'end' follows
      cleanup();
      resolve(c);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(null);
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onClose = (): void => {
      cleanup();
      if (src.readableEnded) resolve(null);
      else reject(src.errored ?? new Error('request body aborted'));
    };
    src.on('readable', onReadable);
    src.once('end', onEnd);
    src.once('error', onError);
    src.once('close', onClose);
  });
}
