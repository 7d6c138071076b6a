// What runs inside an accepted tunnel, by the destination port's protocol as Istio decides it:
// TCP and TLS ports are spliced to an endpoint; HTTP ports go to the HTTP engine as HTTP/1.x or
// HTTP/2 (prior knowledge), told apart by the first bytes (Envoy's codec AUTO); ports of unknown
// protocol are sniffed into one of the three.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import http2, { type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import { acceptTunnel } from '../hbone/server.ts';
import type { Logger } from '../observe/logger.ts';
import type { TunnelInfo } from '../pipeline/context.ts';
import type { Verdict } from '../pipeline/filter.ts';
import { REASONS, type Reason, type ReasonInfo } from '../pipeline/reasons.ts';
import { Http1Downstream, type Http1Host, Http2Downstream } from './downstream.ts';
import { HeadGuard, type HeadVerdict, type HeadWatch } from './head-guard.ts';
import type { HttpEngine } from './http-engine.ts';
import { sniffStream } from './sniff.ts';
import { proxyTcp, type TcpProxyDeps } from './tcp-proxy.ts';
import { UpgradeDownstream } from './upgrade.ts';

const TUNNEL = Symbol('tunnel');
const HEAD = Symbol('head');
type TunnelStream = Duplex & { [TUNNEL]?: TunnelInfo; [HEAD]?: HeadWatch };

export interface DispatchOptions {
  /** Inner HTTP/1.1 keep-alive idle timeout (Envoy's default idle timeout is 1 h). */
  readonly keepAliveTimeoutMs?: number;
  /** Request header block limit (Envoy: 60 KiB); over it the client gets 431. */
  readonly maxHeaderBytes?: number;
  /** Time a request head may take, from its first byte (slowloris protection); default 10 s, 0: none. */
  readonly requestHeadTimeoutMs?: number;
  /** Tunnels one client identity may hold with their first head incomplete; default 64, 0: no bound. */
  readonly maxPendingHeadsPerIdentity?: number;
}

export class TunnelDispatcher {
  readonly #engine: HttpEngine;
  readonly #tcp: TcpProxyDeps;
  readonly #log: Logger;
  readonly #http1: http.Server;
  readonly #h2Sessions = new Set<ServerHttp2Session>();
  readonly #maxHeaderBytes: number;
  /** Inner HTTP/1 connections and how many requests each has in flight (Node's server, fed
   * streams rather than listening, does not track them for closeIdleConnections). */
  readonly #http1Tunnels = new Map<TunnelStream, number>();
  readonly #heads: HeadGuard;
  #draining = false;
  /** What each HTTP/1 exchange asks of the dispatcher: one object, no closures per request. */
  readonly #http1Host: Http1Host & { draining: boolean } = {
    draining: false,
    exchangeClosed: (socket: Duplex): void => {
      const stream = socket as TunnelStream;
      stream[HEAD]?.responseDone();
      const left = (this.#http1Tunnels.get(stream) ?? 1) - 1;
      if (this.#http1Tunnels.has(stream)) this.#http1Tunnels.set(stream, left);
    },
  };

  constructor(engine: HttpEngine, tcp: TcpProxyDeps, log: Logger, opts: DispatchOptions = {}) {
    this.#engine = engine;
    this.#tcp = tcp;
    this.#log = log;
    this.#maxHeaderBytes = opts.maxHeaderBytes ?? 60 * 1024;
    this.#heads = new HeadGuard({
      timeoutMs: opts.requestHeadTimeoutMs ?? 10_000,
      maxPendingPerIdentity: opts.maxPendingHeadsPerIdentity ?? 64,
    });
    this.#http1 = http.createServer({
      keepAliveTimeout: opts.keepAliveTimeoutMs ?? 3_600_000,
      // Enforced by HeadGuard: Node applies it only to servers that listen().
      headersTimeout: 0,
      // Whole-request deadlines belong to routes; a long upload must not be cut here.
      requestTimeout: 0,
      maxHeaderSize: this.#maxHeaderBytes,
    });
    // A client's FIN after its request (`printf ... | nc -N`) must not end the tunnel before the
    // answer: the response goes out, then the tunnel closes (Node's own switch for it).
    (this.#http1 as http.Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
    this.#http1.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const stream = req.socket as TunnelStream;
      stream[HEAD]?.headComplete();
      this.#http1Tunnels.set(stream, (this.#http1Tunnels.get(stream) ?? 0) + 1);
      this.#engine.handle(new Http1Downstream(req, res, this.#http1Host), stream[TUNNEL]!);
    });
    this.#http1.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const info = (socket as TunnelStream)[TUNNEL]!;
      (socket as TunnelStream)[HEAD]?.close();
      this.#engine.handle(new UpgradeDownstream(req, socket, head), info);
    });
    this.#http1.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      const reason =
        err.code === 'HPE_HEADER_OVERFLOW' ? 'downstream_headers_too_large' : 'downstream_protocol_error';
      const tunnel = (socket as TunnelStream)[TUNNEL];
      this.#log.info('http: malformed request', {
        reason,
        error: err.code ?? err.message,
        source: tunnel?.peer.uri,
      });
      if (socket.writable && err.code !== 'ECONNRESET') {
        socket.end(rawLocalReply(reason));
      } else {
        socket.destroy();
      }
    });
  }

  serve(stream: ServerHttp2Stream, info: TunnelInfo): void {
    const protocol = info.binding.kind === 'service' ? info.binding.protocol : 'unknown';
    if (protocol === 'tcp' || protocol === 'tls') {
      this.#serveTcp(stream, info, false);
      return;
    }
    acceptTunnel(stream);
    void sniffStream(stream).then(({ kind, leftover }) => {
      if (stream.destroyed) return;
      if (leftover) {
        // The client sent its FIN before anything could be decided: opaque bytes on an unknown
        // port go on as TCP; on an HTTP port it is an incomplete request, closed as Envoy does.
        if (protocol === 'unknown') this.#serveTcp(stream, info, true, leftover);
        else stream.end();
        return;
      }
      if (kind === 'tcp' && protocol === 'unknown') this.#serveTcp(stream, info, true);
      else if (kind === 'http2') this.#serveHttp2(stream, info);
      else this.#serveHttp1(stream, info);
    });
  }

  /** Stops reusing inner connections: GOAWAY on HTTP/2, `Connection: close` and idle closes on HTTP/1. */
  drain(): void {
    this.#draining = true;
    this.#http1Host.draining = true;
    for (const s of this.#h2Sessions) if (!s.closed) s.close();
    // Busy connections close after their response (Connection: close); idle ones close now.
    for (const [stream, inFlight] of this.#http1Tunnels) if (inFlight === 0) stream.end();
  }

  /**
   * Opaque TCP: the filters' network phase first (authorization), then the splice. While an async
   * filter (network ext_authz) decides, nothing reads the tunnel: its bytes wait under HTTP/2 flow
   * control.
   */
  #serveTcp(stream: ServerHttp2Stream, info: TunnelInfo, accepted: boolean, leftover?: Buffer): void {
    const explain: string[] = [];
    const chain = this.#engine.chainFor(info.snapshot);
    const abort = new AbortController();
    const verdict = chain.onTcpConnection(info, explain, abort.signal);
    if (!(verdict instanceof Promise)) {
      this.#tcpDecided(stream, info, accepted, leftover, verdict, explain);
      return;
    }
    const onClose = (): void => abort.abort();
    stream.once('close', onClose);
    void verdict.then((v) => {
      stream.off('close', onClose);
      if (stream.destroyed || abort.signal.aborted) return;
      this.#tcpDecided(stream, info, accepted, leftover, v, explain);
    });
  }

  #tcpDecided(
    stream: ServerHttp2Stream,
    info: TunnelInfo,
    accepted: boolean,
    leftover: Buffer | undefined,
    verdict: Verdict,
    explain: readonly string[],
  ): void {
    if (verdict.kind === 'reply') {
      // Envoy closes a denied TCP connection without a word (l7-semantics.md §2.8).
      this.#log.info('tcp: connection denied', {
        reason: verdict.reason,
        detail: verdict.detail,
        source: info.peer.uri,
        destination: `${info.destination.ip}:${info.destination.port}`,
        explain,
      });
      this.#tcp.metrics.tunnelRejected(verdict.reason);
      if (!accepted) acceptTunnel(stream);
      stream.end();
      return;
    }
    void proxyTcp(stream, info, this.#tcp, accepted, leftover);
  }

  #serveHttp1(stream: ServerHttp2Stream, info: TunnelInfo): void {
    const watch = this.#heads.watch(stream, info.peer.uri, (v) => this.#headFailed(stream, info, v));
    if (!watch) return;
    (stream as TunnelStream)[HEAD] = watch;
    stream.once('close', () => watch.close());
    (stream as TunnelStream)[TUNNEL] = info;
    this.#http1Tunnels.set(stream, 0);
    stream.once('close', () => this.#http1Tunnels.delete(stream));
    this.#http1.emit('connection', stream);
    stream.resume();
  }

  /** A head too slow, or one tunnel too many with an unfinished head: answer, then close. */
  #headFailed(stream: ServerHttp2Stream, info: TunnelInfo, v: HeadVerdict): void {
    const reason: Reason = v === 'timeout' ? 'request_header_timeout' : 'overload_pending_heads';
    this.#log.info('http: request head refused', { reason, source: info.peer.uri });
    this.#tcp.metrics.tunnelRejected(reason);
    if (!stream.writable) return;
    stream.end(rawLocalReply(reason));
  }

  #serveHttp2(stream: ServerHttp2Stream, info: TunnelInfo): void {
    const session = http2.performServerHandshake(stream, {
      settings: {
        maxConcurrentStreams: 1000,
        initialWindowSize: 1024 * 1024,
        enablePush: false,
        maxHeaderListSize: this.#maxHeaderBytes,
      },
      maxSessionMemory: 64,
    });
    this.#h2Sessions.add(session);
    session.once('close', () => this.#h2Sessions.delete(session));
    session.on('error', () => {});
    session.on('stream', (s: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
      this.#engine.handle(new Http2Downstream(s, headers), info);
    });
    if (this.#draining) session.close();
  }
}

/** A local reply written before (or instead of) Node's HTTP server: the connection closes after it. */
function rawLocalReply(reason: Reason): string {
  const info: ReasonInfo = REASONS[reason];
  let extra = '';
  for (const [k, v] of Object.entries(info.headers ?? {})) extra += `${k}: ${v}\r\n`;
  return `HTTP/1.1 ${info.status} ${http.STATUS_CODES[info.status]}\r\ncontent-type: text/plain\r\ncontent-length: ${info.body.length}\r\n${extra}x-waypoint-reason: ${reason}\r\nconnection: close\r\n\r\n${info.body}`;
}
