// HTTP/2 PING keepalive for HBONE sessions: ztunnel pings every 10 s and drops a session whose
// PONG has not come back within 20 s. Half-open sessions (pod IP reuse, dead nodes) are otherwise
// only found when a request fails on them.
import type { Http2Session } from 'node:http2';
import { KEEPALIVE_INTERVAL_MS, KEEPALIVE_TIMEOUT_MS } from './settings.ts';

export function keepSessionAlive(
  session: Http2Session,
  intervalMs = KEEPALIVE_INTERVAL_MS,
  timeoutMs = KEEPALIVE_TIMEOUT_MS,
): void {
  let waiting = false;
  let deadline: NodeJS.Timeout | undefined;
  const timer = setInterval(() => {
    if (waiting || session.destroyed || session.closed) return;
    waiting = true;
    deadline = setTimeout(() => session.destroy(new Error('HBONE keepalive: no PING ack')), timeoutMs);
    deadline.unref();
    try {
      session.ping((err) => {
        waiting = false;
        clearTimeout(deadline);
        if (err && !session.destroyed) session.destroy(err);
      });
    } catch {
      waiting = false;
      clearTimeout(deadline);
    }
  }, intervalMs);
  timer.unref();
  session.once('close', () => {
    clearInterval(timer);
    clearTimeout(deadline);
  });
}
