// HBONE inbound: the waypoint's port 15008. Terminates mutual TLS (TLS 1.3, ALPN h2, client
// certificate required and chained to the trust bundle, SPIFFE ID in this trust domain), accepts
// HTTP/2 CONNECT streams, asks the router whether the :authority is served here, and hands each
// accepted stream on as a tunnel. Everything else is refused with a status and a reason.
import http2, {
  type Http2SecureServer,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Credentials } from '../identity/credentials.ts';
import { identityOfSubjectAltName, type SpiffeId } from '../identity/spiffe.ts';
import type { Logger } from '../observe/logger.ts';
import { type Reason, reasonInfo } from '../pipeline/reasons.ts';
import { forwardedFor, type HostPort, parseAuthority } from './authority.ts';
import { keepSessionAlive } from './keepalive.ts';
import { closeOnPeerReset } from './peer-reset.ts';
import { CONNECTION_WINDOW, inboundSettings, MAX_SESSION_MEMORY_MB } from './settings.ts';
import { fixWritev } from './writev-fix.ts';

export interface ConnectRequest {
  readonly authority: HostPort;
  readonly peer: SpiffeId;
  /** The TCP peer of the HBONE connection (ztunnel, or the client pod in in-pod mode). */
  readonly peerAddress: HostPort;
  /** The original client address: `forwarded: for=` when present, else the TCP peer. */
  readonly source: HostPort;
  readonly headers: IncomingHttpHeaders;
}

export type ConnectDecision =
  /** serve must answer the CONNECT: acceptTunnel() once it can carry bytes, or refuseTunnel(). */
  | { readonly accept: true; readonly serve: (tunnel: ServerHttp2Stream) => void }
  | { readonly accept: false; readonly reason: Reason; readonly detail: string };

export interface HboneServerHooks {
  /** Decides, synchronously, whether this waypoint serves the CONNECT's destination. */
  route(req: ConnectRequest): ConnectDecision;
  onRejected?(req: Partial<ConnectRequest>, reason: Reason, detail: string): void;
  /** Overload admission of a well-formed CONNECT, before route(): a reason refuses it. */
  admit?(activeTunnels: number): Reason | undefined;
  /** A TCP connection was closed at accept because maxConnections are open. */
  onConnectionDropped?(): void;
}

export interface HboneServerLimits {
  /** Concurrent TLS connections; Node closes any beyond (net.Server maxConnections). */
  readonly maxConnections?: number;
  /** SETTINGS_MAX_CONCURRENT_STREAMS: nghttp2 resets streams beyond it with REFUSED_STREAM. */
  readonly maxTunnelsPerConnection?: number;
}

export class HboneServer {
  readonly #server: Http2SecureServer;
  readonly #sessions = new Set<ServerHttp2Session>();
  readonly #credentials: Credentials;
  readonly #log: Logger;
  #draining = false;
  #activeTunnels = 0;

  constructor(
    credentials: Credentials,
    hooks: HboneServerHooks,
    log: Logger,
    limits: HboneServerLimits = {},
  ) {
    this.#credentials = credentials;
    this.#log = log;
    this.#server = http2.createSecureServer({
      ...credentials.tlsOptions(),
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      ALPNProtocols: ['h2'],
      requestCert: true,
      rejectUnauthorized: true,
      allowHTTP1: false,
      settings: {
        ...inboundSettings,
        maxConcurrentStreams: limits.maxTunnelsPerConnection ?? inboundSettings.maxConcurrentStreams,
      },
      maxSessionMemory: MAX_SESSION_MEMORY_MB,
      // A client that never finishes its TLS handshake holds a socket; drop it.
      handshakeTimeout: 10_000,
    });
    if (limits.maxConnections) this.#server.maxConnections = limits.maxConnections;
    this.#server.on('drop', (data) => {
      hooks.onConnectionDropped?.();
      this.#log.debug('hbone: connection refused', {
        reason: 'overload_connections',
        peer: data?.remoteAddress,
      });
    });
    credentials.onChange(() => {
      // New handshakes use the new certificate and trust bundle; live sessions keep theirs.
      this.#server.setSecureContext({ ...credentials.tlsOptions(), ALPNProtocols: ['h2'] } as never);
      this.#log.info('hbone: certificate reloaded', { identity: credentials.identity.uri });
    });
    this.#server.on('secureConnection', (socket: TLSSocket) => this.#checkPeer(socket, hooks));
    this.#server.on('tlsClientError', (err, socket) => {
      this.#log.warn('hbone: TLS handshake failed', {
        peer: `${socket.remoteAddress}:${socket.remotePort}`,
        error: err.message,
      });
    });
    this.#server.on('session', (session) => this.#onSession(session));
    this.#server.on('stream', (stream, headers) => this.#onStream(stream, headers, hooks));
    this.#server.on('sessionError', (err) => this.#log.debug('hbone: session error', { error: err.message }));
  }

  get activeTunnels(): number {
    return this.#activeTunnels;
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** `reusePort`: other processes may bind the same port (SO_REUSEPORT; the kernel spreads connections). */
  listen(host: string, port: number, reusePort = false): Promise<HostPort> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ port, host, reusePort }, () => {
        this.#server.off('error', reject);
        const addr = this.#server.address() as AddressInfo;
        resolve({ ip: addr.address, port: addr.port });
      });
    });
  }

  /** GOAWAY on every session; sessions close once their streams finish. New sessions get GOAWAY too. */
  drain(): void {
    this.#draining = true;
    for (const s of this.#sessions) if (!s.closed) s.close();
  }

  /** Stops listening and resets whatever is left. */
  close(): Promise<void> {
    for (const s of this.#sessions) s.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #checkPeer(socket: TLSSocket, hooks: HboneServerHooks): void {
    // Tunnels carry small request/response exchanges: Nagle's algorithm would hold a response's
    // last segment until the peer's delayed ACK (40 ms on Linux).
    socket.setNoDelay(true);
    // The handshake already chained the certificate to our roots; ztunnel also insists on our trust
    // domain (TrustDomainVerifier). Which identities may talk to what is authorization's business.
    const cert = socket.getPeerCertificate();
    const peer = identityOfSubjectAltName(cert?.subjectaltname);
    const trustDomain = this.#credentials.identity.trustDomain;
    if (!peer || peer.trustDomain !== trustDomain) {
      const detail = peer
        ? `peer ${peer.uri} is not in trust domain ${trustDomain}`
        : 'peer certificate has no SPIFFE URI SAN';
      hooks.onRejected?.({}, 'hbone_peer_untrusted', detail);
      this.#log.warn('hbone: connection refused', {
        reason: 'hbone_peer_untrusted',
        detail,
        peer: `${socket.remoteAddress}:${socket.remotePort}`,
      });
      socket.destroy();
      return;
    }
    (socket as TLSSocket & { spiffe?: SpiffeId }).spiffe = peer;
  }

  #onSession(session: ServerHttp2Session): void {
    this.#sessions.add(session);
    session.once('close', () => this.#sessions.delete(session));
    session.on('error', () => {});
    session.once('localSettings', () => {
      try {
        session.setLocalWindowSize(CONNECTION_WINDOW);
      } catch {
        // The session died before settings were acknowledged.
      }
    });
    keepSessionAlive(session);
    if (this.#draining) setImmediate(() => !session.closed && session.close());
  }

  #onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, hooks: HboneServerHooks): void {
    stream.on('error', () => {});
    fixWritev(stream);
    closeOnPeerReset(stream);
    const socket = stream.session?.socket as (TLSSocket & { spiffe?: SpiffeId }) | undefined;
    const peer = socket?.spiffe;
    if (!socket || !peer) {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    const peerAddress = { ip: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    const refuse: Refuse = (reason, detail, req) => {
      hooks.onRejected?.(req, reason, detail);
      this.#log.warn('hbone: CONNECT refused', {
        reason,
        detail,
        authority: headers[':authority'],
        peer: peer.uri,
        source: `${peerAddress.ip}:${peerAddress.port}`,
      });
      refuseTunnel(stream, reason);
    };
    const req = connectRequest(headers, peer, peerAddress, refuse);
    const decision = req && this.#decide(req, stream, hooks, refuse);
    if (!decision) return;
    this.#activeTunnels++;
    stream.once('close', () => this.#activeTunnels--);
    decision.serve(stream);
  }

  /** Draining, overload, then the router's word: the accepted decision, or undefined once refused. */
  #decide(
    req: ConnectRequest,
    stream: ServerHttp2Stream,
    hooks: HboneServerHooks,
    refuse: Refuse,
  ): AcceptedConnect | undefined {
    if (this.#draining && stream.session?.closed) {
      refuse('draining', 'shutdown in progress', req);
      return undefined;
    }
    const overloaded = hooks.admit?.(this.#activeTunnels);
    if (overloaded) {
      refuse(overloaded, `${this.#activeTunnels} tunnels active`, req);
      return undefined;
    }
    let decision: ConnectDecision;
    try {
      decision = hooks.route(req);
    } catch (err) {
      this.#log.error('hbone: router threw', { error: String(err) });
      refuse('internal_error', String(err), req);
      return undefined;
    }
    if (!decision.accept) {
      refuse(decision.reason, decision.detail, req);
      return undefined;
    }
    return decision;
  }
}

type Refuse = (reason: Reason, detail: string, req: Partial<ConnectRequest>) => void;
type AcceptedConnect = Extract<ConnectDecision, { accept: true }>;

/** The CONNECT's method and authority checked: the request, or undefined once refused. */
function connectRequest(
  headers: IncomingHttpHeaders,
  peer: SpiffeId,
  peerAddress: HostPort,
  refuse: Refuse,
): ConnectRequest | undefined {
  if (headers[':method'] !== 'CONNECT') {
    refuse('hbone_method_not_allowed', `method ${headers[':method']}`, { peer, peerAddress });
    return undefined;
  }
  const authority = parseAuthority(headers[':authority']);
  if (!authority) {
    refuse('hbone_bad_authority', `:authority ${JSON.stringify(headers[':authority'])}`, {
      peer,
      peerAddress,
    });
    return undefined;
  }
  return { authority, peer, peerAddress, source: forwardedFor(headers.forwarded) ?? peerAddress, headers };
}

/** Answers a CONNECT with 200: from here on the stream carries the client's bytes. */
export function acceptTunnel(stream: ServerHttp2Stream): void {
  if (!stream.headersSent && !stream.destroyed) stream.respond({ ':status': 200 });
}

/** Answers a CONNECT with the reason's status and body (before acceptTunnel only). */
export function refuseTunnel(stream: ServerHttp2Stream, reason: Reason): void {
  if (stream.headersSent || stream.destroyed) return;
  const info = reasonInfo(reason);
  const extra = reason === 'hbone_method_not_allowed' ? { allow: 'CONNECT' } : {};
  stream.respond({
    ':status': info.status,
    'content-type': 'text/plain',
    'x-waypoint-reason': reason,
    ...info.headers,
    ...extra,
  });
  stream.end(info.body);
}
