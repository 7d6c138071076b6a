// The admin port under --concurrency N: the primary holds it and forwards each request to worker
// 0's private admin port, so it stays up while worker 0 restarts or has drained before the others.
// While the replica drains, the readiness pages are answered here (503), as one process would.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface AdminTarget {
  /** Worker 0's private admin address, or undefined while it is not running. */
  target(): { ip: string; port: number } | undefined;
  readonly stopping: boolean;
}

const DRAINING: Record<string, string> = {
  '/healthz/ready': 'not ready: draining\n',
  '/ready': 'DRAINING\n',
};

export function adminProxy(w: AdminTarget): http.Server {
  return http.createServer((req, res) => {
    const reply = (status: number, body: string) => {
      res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    const path = (req.url ?? '/').split('?')[0]!;
    const to = w.target();
    if (w.stopping && DRAINING[path]) return reply(503, DRAINING[path]!);
    if (!to) return reply(503, 'worker 0 is not running\n');
    const out = http.request(
      { host: to.ip, port: to.port, method: req.method, path: req.url, headers: req.headers, agent: false },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    out.on('error', () => (res.headersSent ? res.destroy() : reply(503, 'worker 0 is not running\n')));
    req.pipe(out);
  });
}

export function listenAdmin(
  server: http.Server,
  host: string,
  port: number,
): Promise<{ ip: string; port: number }> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const a = server.address() as AddressInfo;
      resolve({ ip: a.address, port: a.port });
    });
  });
}
