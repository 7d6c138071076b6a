// Request-body streams an upstream layer made for one attempt (a replay of the client's body):
// unlike the client's own stream, a transport may destroy one of these when it is done with it, so
// it needs no protective copy in between.
import type { Readable } from 'node:stream';

const attemptBodies = new WeakSet<Readable>();

export function markAttemptBody<T extends Readable>(body: T): T {
  attemptBodies.add(body);
  return body;
}

export function isAttemptBody(body: Readable): boolean {
  return attemptBodies.has(body);
}
