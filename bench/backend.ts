// The application behind every path: plain HTTP/1.1 on the pod's IP. Bench child process.
//   any method /echo   reads the request body, answers responseBytes bytes (the Istio method: 1 KiB)
//   GET /blob?bytes=N  streams N bytes (the large-transfer download)
//   PUT /sink          counts the body, answers {"bytes": N} (the large-transfer upload)
// Bodies carry a content-length (framing "length", the default, as fortio and most servers answer)
// or go chunked (framing "chunked": no content-length, written with write() then end()).
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { announceReady, childConfig, exitWithParent } from './child.ts';

interface BackendConfig {
  readonly ip: string;
  readonly port: number;
  readonly responseBytes: number;
  readonly framing: 'length' | 'chunked';
  /** A second listener with the same handler over mutual TLS (HAProxy's upstream; PEM file paths). */
  readonly tls?: { ip: string; port: number; cert: string; key: string; ca: string };
}

const MAX_BLOB = 4 * 1024 ** 3;
const CHUNK = Buffer.alloc(64 * 1024, 0x62);

function createHandler(responseBytes: number, chunked: boolean): http.RequestListener {
  const reply = Buffer.alloc(responseBytes, 0x72);
  const length = (n: number): Record<string, number> => (chunked ? {} : { 'content-length': n });
  return (req, res) => {
    const url = req.url ?? '/';
    if (req.method === 'GET' && url.startsWith('/blob')) {
      const n = Number(new URL(url, 'http://x').searchParams.get('bytes'));
      if (!Number.isInteger(n) || n < 0 || n > MAX_BLOB) {
        res.writeHead(400).end();
        return;
      }
      req.resume();
      res.writeHead(200, { 'content-type': 'application/octet-stream', ...length(n) });
      let left = n;
      const pump = (): void => {
        while (left > 0) {
          const k = Math.min(left, CHUNK.length);
          left -= k;
          if (!res.write(k === CHUNK.length ? CHUNK : CHUNK.subarray(0, k))) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
      return;
    }
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      bytes += c.length;
    });
    req.on('end', () => {
      if (url.startsWith('/sink')) {
        const body = JSON.stringify({ bytes });
        res.writeHead(200, { 'content-type': 'application/json', ...length(Buffer.byteLength(body)) });
        res.end(body);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', ...length(reply.length) });
      if (chunked) {
        res.write(reply);
        res.end();
      } else res.end(reply);
    });
  };
}

function keepOpen<S extends http.Server>(server: S): S {
  // Keep-alive connections from the load generator and the stand-ins stay open for the whole run.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 125_000;
  server.requestTimeout = 0;
  return server;
}

const cfg = childConfig<BackendConfig>();
const handler = createHandler(cfg.responseBytes, cfg.framing === 'chunked');
const servers: http.Server[] = [keepOpen(http.createServer(handler))];
const listening = [new Promise<void>((r) => servers[0]!.listen(cfg.port, cfg.ip, r))];
if (cfg.tls) {
  const t = cfg.tls;
  const file = (f: string): string => readFileSync(f, 'utf8');
  const tlsServer = keepOpen(
    https.createServer(
      { cert: file(t.cert), key: file(t.key), ca: file(t.ca), requestCert: true, rejectUnauthorized: true },
      handler,
    ),
  );
  servers.push(tlsServer);
  listening.push(new Promise<void>((r) => tlsServer.listen(t.port, t.ip, r)));
}
await Promise.all(listening);
announceReady({
  listen: `${cfg.ip}:${cfg.port}`,
  ...(cfg.tls ? { tls: `${cfg.tls.ip}:${cfg.tls.port}` } : {}),
});
exitWithParent(() =>
  Promise.all(
    servers.map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    ),
  ),
);
