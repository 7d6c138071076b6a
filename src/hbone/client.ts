// HBONE outbound: opens CONNECT tunnels to endpoints' HBONE ports with the waypoint's own
// certificate, pooling HTTP/2 sessions per (endpoint address, expected identity) as ztunnel does
// and multiplexing tunnels on them. The peer must prove the exact SPIFFE identity we expect.
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type OutgoingHttpHeaders } from 'node:http2';
import type { PeerCertificate } from 'node:tls';
import type { Credentials } from '../identity/credentials.ts';
import { uriSans } from '../identity/spiffe.ts';
import { formatAuthority } from './authority.ts';
import { keepSessionAlive } from './keepalive.ts';
import { closeOnPeerReset } from './peer-reset.ts';
import {
  CONNECTION_WINDOW,
  MAX_SESSION_MEMORY_MB,
  OUTBOUND_MAX_STREAMS,
  outboundSettings,
} from './settings.ts';
import { fixWritev } from './writev-fix.ts';

export interface HboneTarget {
  /** Endpoint IP; the TCP connection goes to ip:hbonePort. */
  readonly ip: string;
  readonly hbonePort: number;
  /** The SPIFFE URI the endpoint must present. */
  readonly identity: string;
}

/** Why a tunnel could not be opened; maps onto a reason code by the caller. */
export type TunnelFailure = 'connect' | 'refused' | 'reset';

export class TunnelError extends Error {
  readonly failure: TunnelFailure;
  readonly status: number | undefined;
  constructor(failure: TunnelFailure, message: string, status?: number, cause?: unknown) {
    super(message, { cause });
    this.name = 'TunnelError';
    this.failure = failure;
    this.status = status;
  }
}

interface PooledSession {
  readonly session: ClientHttp2Session;
  readonly ready: Promise<void>;
  streams: number;
  maxStreams: number;
}

export interface HboneClientOptions {
  /** Close a pooled session after this long without streams (ztunnel: 5 min). */
  readonly idleTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
  /** Streams per session before another session opens (ztunnel: 100). */
  readonly maxStreamsPerSession?: number;
}

export class HboneClient {
  readonly #credentials: Credentials;
  readonly #pools = new Map<string, PooledSession[]>();
  readonly #idleTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #maxStreams: number;
  #sessions = 0;
  #closed = false;

  constructor(credentials: Credentials, opts: HboneClientOptions = {}) {
    this.#credentials = credentials;
    this.#idleTimeoutMs = opts.idleTimeoutMs ?? 300_000;
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
    this.#maxStreams = opts.maxStreamsPerSession ?? OUTBOUND_MAX_STREAMS;
    // A rotated certificate applies to new sessions; existing ones finish their streams on the old one.
    credentials.onChange(() => {
      for (const sessions of this.#pools.values()) for (const s of sessions) s.session.close();
      this.#pools.clear();
    });
  }

  /** HBONE sessions currently open (all targets). */
  get sessionCount(): number {
    return this.#sessions;
  }

  /**
   * Opens a tunnel to `authority` (ENDPOINT_IP:TARGET_PORT) through target's HBONE port. Resolves with
   * the CONNECT stream once the peer answered 200; rejects with a TunnelError otherwise.
   */
  async open(
    target: HboneTarget,
    authority: string,
    headers: OutgoingHttpHeaders = {},
  ): Promise<ClientHttp2Stream> {
    if (this.#closed) throw new TunnelError('connect', 'HBONE client is closed');
    const pooled = this.#acquire(target);
    try {
      await pooled.ready;
    } catch (err) {
      pooled.streams--;
      throw err;
    }
    let stream: ClientHttp2Stream;
    try {
      stream = pooled.session.request(
        { ':method': 'CONNECT', ':authority': authority, ...headers },
        {
          endStream: false,
        },
      );
    } catch (err) {
      pooled.streams--;
      throw new TunnelError('connect', `CONNECT ${authority}: ${(err as Error).message}`, undefined, err);
    }
    stream.once('close', () => {
      pooled.streams--;
      if (pooled.streams === 0) pooled.session.setTimeout(this.#idleTimeoutMs);
    });
    pooled.session.setTimeout(0);
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        stream.off('response', onResponse);
        reject(new TunnelError('reset', `CONNECT ${authority}: ${err.message}`, undefined, err));
      };
      const onClose = (): void => onError(new Error(`stream closed (code ${stream.rstCode})`));
      const onResponse = (h: http2.IncomingHttpHeaders): void => {
        stream.off('error', onError);
        stream.off('close', onClose);
        const status = Number(h[':status']);
        if (status === 200) {
          stream.on('error', () => {});
          fixWritev(stream);
          closeOnPeerReset(stream);
          resolve(stream);
          return;
        }
        stream.on('error', () => {});
        stream.close(http2.constants.NGHTTP2_CANCEL);
        reject(new TunnelError('refused', `CONNECT ${authority} answered ${status}`, status));
      };
      stream.once('response', onResponse);
      stream.once('error', onError);
      stream.once('close', onClose);
    });
  }

  close(): void {
    this.#closed = true;
    for (const sessions of this.#pools.values()) for (const s of sessions) s.session.close();
    this.#pools.clear();
  }

  #acquire(target: HboneTarget): PooledSession {
    const key = `${target.ip}|${target.hbonePort}|${target.identity}`;
    let sessions = this.#pools.get(key);
    if (!sessions) {
      sessions = [];
      this.#pools.set(key, sessions);
    }
    // ztunnel hands a connection out while it is below its stream limit; so do we.
    for (const s of sessions) {
      if (s.streams < s.maxStreams && !s.session.closed && !s.session.destroyed) {
        s.streams++;
        return s;
      }
    }
    const fresh = this.#connect(target, key);
    fresh.streams++;
    sessions.push(fresh);
    return fresh;
  }

  #forget(key: string, pooled: PooledSession): void {
    const sessions = this.#pools.get(key);
    if (!sessions) return;
    const i = sessions.indexOf(pooled);
    if (i >= 0) sessions.splice(i, 1);
    if (sessions.length === 0) this.#pools.delete(key);
  }

  #connect(target: HboneTarget, key: string): PooledSession {
    const session = http2.connect(`https://${formatAuthority(target.ip, target.hbonePort)}`, {
      ...this.#credentials.tlsOptions(),
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      ALPNProtocols: ['h2'],
      // ztunnel sends no SNI and pins the URI SAN; host names play no part.
      servername: '',
      checkServerIdentity: (_host: string, cert: PeerCertificate) => checkPeerIdentity(cert, target.identity),
      settings: outboundSettings,
      // See the server: no Nagle delay on tunnels (net.connect's noDelay, which tls passes down;
      // http2's option types omit it, and session.socket refuses setNoDelay).
      ...({ noDelay: true } as object),
      maxSessionMemory: MAX_SESSION_MEMORY_MB,
      peerMaxConcurrentStreams: this.#maxStreams,
    });
    this.#sessions++;
    const pooled: PooledSession = {
      session,
      streams: 0,
      maxStreams: this.#maxStreams,
      ready: this.#handshake(session, target, (limit) => (pooled.maxStreams = limit)),
    };
    pooled.ready.catch(() => {});
    session.on('error', () => {});
    session.once('close', () => {
      this.#sessions--;
      this.#forget(key, pooled);
    });
    session.once('goaway', () => this.#forget(key, pooled));
    session.on('timeout', () => session.close());
    keepSessionAlive(session);
    return pooled;
  }

  /** Resolves once the peer's SETTINGS arrive (its stream limit is then known); bounded by the connect timeout. */
  #handshake(
    session: ClientHttp2Session,
    target: HboneTarget,
    onLimit: (maxStreams: number) => void,
  ): Promise<void> {
    const where = `HBONE ${target.ip}:${target.hbonePort}`;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => session.destroy(new Error(`no TLS/HTTP2 handshake within ${this.#connectTimeoutMs} ms`)),
        this.#connectTimeoutMs,
      );
      session.once('remoteSettings', (settings) => {
        clearTimeout(timer);
        onLimit(Math.min(OUTBOUND_MAX_STREAMS, settings.maxConcurrentStreams ?? OUTBOUND_MAX_STREAMS));
        try {
          session.setLocalWindowSize(CONNECTION_WINDOW);
        } catch {}
        resolve();
      });
      session.once('close', () => {
        clearTimeout(timer);
        reject(new TunnelError('connect', `${where} closed during handshake`));
      });
      session.once('error', (err: Error) => {
        clearTimeout(timer);
        reject(new TunnelError('connect', `${where}: ${err.message}`, undefined, err));
      });
    });
  }
}

/** The outbound identity pin: the peer's certificate must carry the expected SPIFFE URI SAN. */
function checkPeerIdentity(cert: PeerCertificate, expected: string): Error | undefined {
  const sans = uriSans(cert.subjectaltname);
  return sans.includes(expected)
    ? undefined
    : new Error(`peer identity ${sans.join(',') || '(none)'} is not ${expected}`);
}
