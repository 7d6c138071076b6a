// The ztunnel stand-ins as a bench child process, from src/ztunnel: role "inbound" terminates HBONE
// on the pod's IP:15008 (the destination node's ztunnel); role "outbound" accepts plain TCP on each
// listener and carries every connection in an HBONE tunnel (the source node's ztunnel), either to
// the waypoint or, for the tunnel floor, straight to the pod's inbound stand-in.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import { memoryCredentials } from '../src/identity/credentials.ts';
import { InboundTunnel } from '../src/ztunnel/inbound.ts';
import { OutboundTunnel } from '../src/ztunnel/outbound.ts';
import { announceReady, childConfig, exitWithParent } from './child.ts';

interface Addr {
  readonly ip: string;
  readonly port: number;
}

interface StandinConfig {
  readonly role: 'inbound' | 'outbound';
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
  /** inbound */
  readonly listen?: Addr;
  /** outbound */
  readonly listeners?: ReadonlyArray<{
    readonly name: string;
    readonly listen: Addr;
    readonly waypoint: Addr;
    readonly waypointIdentity: string;
    readonly destination: Addr;
  }>;
  /** outbound: plain HTTP/1.1 in, each request as an HTTP/2 request over mutual TLS out (HAProxy's path). */
  readonly h2Bridges?: ReadonlyArray<{
    readonly name: string;
    readonly listen: Addr;
    readonly upstream: Addr;
    readonly upstreamIdentity: string;
  }>;
}

// Warnings and errors on stderr (the bench keeps them in bench/out/); nothing per request.
const write =
  (level: string) =>
  (msg: string, fields?: Record<string, unknown>): void => {
    process.stderr.write(`${JSON.stringify({ level, msg, ...fields })}\n`);
  };
const log = {
  debug() {},
  info() {},
  warn: write('warn'),
  error: write('error'),
  child: () => log,
};

const cfg = childConfig<StandinConfig>();
const credentials = memoryCredentials({
  cert: readFileSync(cfg.cert, 'utf8'),
  key: readFileSync(cfg.key, 'utf8'),
  ca: readFileSync(cfg.ca, 'utf8'),
});

/** HTTP/1.1 in, HTTP/2 with the client's certificate out, on one pooled session (as HBONE pools). */
function h2Bridge(b: NonNullable<StandinConfig['h2Bridges']>[number]): http.Server {
  let session: http2.ClientHttp2Session | undefined;
  const connect = (): http2.ClientHttp2Session => {
    if (session && !session.closed && !session.destroyed) return session;
    const s = http2.connect(`https://${b.upstream.ip}:${b.upstream.port}`, {
      ...credentials.tlsOptions(),
      ALPNProtocols: ['h2'],
      // The peer is checked by its SPIFFE ID (URI SAN), not a DNS name.
      checkServerIdentity: (_host, cert) =>
        cert.subjectaltname?.split(', ').includes(`URI:${b.upstreamIdentity}`)
          ? undefined
          : new Error(`expected ${b.upstreamIdentity}, got ${cert.subjectaltname}`),
    });
    s.on('error', (err) => log.warn('h2 bridge session', { error: err.message }));
    s.on('close', () => {
      if (session === s) session = undefined;
    });
    session = s;
    return s;
  };
  const server = http.createServer((req, res) => {
    const headers: http2.OutgoingHttpHeaders = {
      ':method': req.method ?? 'GET',
      ':path': req.url ?? '/',
      ':authority': req.headers.host ?? `${b.upstream.ip}`,
    };
    for (const [k, v] of Object.entries(req.headers))
      if (k !== 'host' && k !== 'connection' && k !== 'keep-alive' && k !== 'transfer-encoding')
        headers[k] = v;
    const up = connect().request(headers);
    const fail = (err: Error): void => {
      if (!res.headersSent) res.writeHead(502, { 'content-length': 0 }).end();
      else res.destroy(err);
    };
    up.on('error', fail);
    req.on('error', () => up.close(http2.constants.NGHTTP2_CANCEL));
    up.on('response', (h) => {
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(h)) if (!k.startsWith(':') && v !== undefined) out[k] = v as string;
      res.writeHead(Number(h[':status']), out);
      up.pipe(res);
    });
    req.pipe(up);
  });
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 125_000;
  server.requestTimeout = 0;
  return server;
}

if (cfg.role === 'inbound') {
  const inbound = new InboundTunnel({ listen: cfg.listen!, credentials, log });
  const bound = await inbound.listen();
  announceReady({ role: 'inbound', listen: `${bound.ip}:${bound.port}` });
  exitWithParent(() => inbound.close());
} else {
  const tunnels: OutboundTunnel[] = [];
  const bound: Record<string, string> = {};
  for (const l of cfg.listeners ?? []) {
    const t = new OutboundTunnel({
      listen: l.listen,
      waypoint: l.waypoint,
      waypointIdentity: l.waypointIdentity,
      destination: l.destination,
      credentials,
      log,
    });
    const a = await t.listen();
    bound[l.name] = `${a.ip}:${a.port}`;
    tunnels.push(t);
  }
  const bridges: http.Server[] = [];
  for (const b of cfg.h2Bridges ?? []) {
    const server = h2Bridge(b);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(b.listen.port, b.listen.ip, () => resolve());
    });
    bound[b.name] = `${b.listen.ip}:${b.listen.port}`;
    bridges.push(server);
  }
  announceReady({ role: 'outbound', listeners: bound });
  exitWithParent(() =>
    Promise.all([
      ...tunnels.map((t) => t.close()),
      ...bridges.map((s) => {
        s.closeAllConnections();
        return new Promise((r) => s.close(r));
      }),
    ]),
  );
}
