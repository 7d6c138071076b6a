// Works around how Node handles a peer's RST_STREAM(NO_ERROR) on a stream we are still writing to
// (what a Node client's stream.destroy() sends, e.g. a client that goes away mid-download): Node
// ends the readable side and emits 'aborted', but never closes the stream, so whatever writes to
// it (Node's HTTP server, a splice) never learns that nobody is listening and the upstream keeps
// sending. With any other code Node closes the stream itself, with an error, right after
// 'aborted'; so this waits a turn and only closes a stream Node left open.
import type { Duplex } from 'node:stream';

/** Closes a tunnel stream once its peer has reset it (idempotent). */
export function closeOnPeerReset(stream: Duplex): void {
  stream.once('aborted', () => {
    setImmediate(() => {
      if (!stream.destroyed) stream.destroy();
    });
  });
}
