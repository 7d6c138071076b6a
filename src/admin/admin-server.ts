// The admin and metrics ports. 15021: GET /healthz/ready (what the kubelet probes) and
// GET /config_dump (the compiled snapshot as JSON). 15020: GET /stats/prometheus. Both plain
// HTTP, both answer 404 for anything else; neither ever sees mesh traffic. A route gets the request
// body (at most MAX_BODY bytes: a larger one is answered 413 without calling the route).
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Route = (
  req: http.IncomingMessage,
  body: string,
) => Promise<{ status: number; type: string; body: string }> | { status: number; type: string; body: string };

/** The largest request body a route is given (64 KiB). */
export const MAX_BODY = 64 * 1024;

/** The body as UTF-8, or undefined once it exceeds `limit` bytes. */
async function readBody(req: http.IncomingMessage, limit: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export class AdminServer {
  readonly #server: http.Server;

  constructor(routes: Record<string, Route>) {
    this.#server = http.createServer(async (req, res) => {
      const path = (req.url ?? '/').split('?')[0]!;
      const route = routes[`${req.method} ${path}`];
      try {
        const body = route ? await readBody(req, MAX_BODY) : '';
        if (body === undefined) {
          res.writeHead(413, { 'content-type': 'text/plain', connection: 'close' });
          res.end(`request body over ${MAX_BODY} bytes\n`);
          return;
        }
        const out = route ? await route(req, body) : { status: 404, type: 'text/plain', body: 'not found\n' };
        res.writeHead(out.status, {
          'content-type': out.type,
          'content-length': Buffer.byteLength(out.body),
        });
        res.end(out.body);
      } catch (err) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`${String(err)}\n`);
      }
    });
    this.#server.keepAliveTimeout = 5_000;
  }

  listen(host: string, port: number): Promise<{ ip: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        const a = this.#server.address() as AddressInfo;
        resolve({ ip: a.address, port: a.port });
      });
    });
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
