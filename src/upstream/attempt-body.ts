// Request-body streams an upstream layer made for one attempt (a replay of the client's body):
// unlike the client's own stream, a transport may destroy one of these when it is done with it, so
// it needs no protective copy in between. When the whole body is already in memory (a small body
// that arrived complete), the stream also carries it as one Buffer, which a transport may send as
// is instead of reading the stream.
import type { Readable } from 'node:stream';

const attemptBodies = new WeakMap<Readable, Buffer | undefined>();

export function markAttemptBody<T extends Readable>(body: T, whole?: Buffer): T {
  attemptBodies.set(body, whole);
  return body;
}

export function isAttemptBody(body: Readable): boolean {
  return attemptBodies.has(body);
}

/** The whole body as one Buffer, when `body` is an attempt's stream that nothing has read yet. */
export function wholeBody(body: Readable): Buffer | undefined {
  const whole = attemptBodies.get(body);
  return whole !== undefined && !body.readableDidRead && !body.destroyed ? whole : undefined;
}
