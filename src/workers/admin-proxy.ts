// The admin port under --concurrency N: the primary holds it and forwards each request to worker
// 0's private admin port, so it stays up while worker 0 restarts or has drained before the others.
// `?worker=N` asks worker N instead (each worker applies the configuration on its own: this is how
// to see that all have). While the replica drains, the readiness pages are answered here (503).
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface AdminTarget {
  /** Worker N's private admin address, or undefined while it is not running. */
  target(index: number): { ip: string; port: number } | undefined;
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
    const [path, query] = (req.url ?? '/').split('?') as [string, string | undefined];
    const worker = new URLSearchParams(query).get('worker') ?? '0';
    if (!/^[0-9]{1,4}$/.test(worker))
      return reply(400, `?worker=N: expected a worker index, got ${JSON.stringify(worker)}\n`);
    const to = w.target(Number(worker));
    const notRunning = `worker ${worker} is not running\n`;
    if (w.stopping && DRAINING[path]) return reply(503, DRAINING[path]!);
    if (!to) return reply(503, notRunning);
    const out = http.request(
      { host: to.ip, port: to.port, method: req.method, path: req.url, headers: req.headers, agent: false },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    out.on('error', () => (res.headersSent ? res.destroy() : reply(503, notRunning)));
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
