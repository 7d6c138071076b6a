// The controller's config stream server: gRPC over mutual TLS; each waypoint proves who it is with
// its SPIFFE certificate and gets only the slice of a Gateway whose ServiceAccount it runs as.
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { formatAuthority, type HostPort } from '../hbone/authority.ts';
import type { Credentials } from '../identity/credentials.ts';
import type { Logger } from '../observe/logger.ts';
import { CONFIG_STREAM_SERVICE, type Push, type WaypointMessage } from './protocol.ts';
import type { SliceSource } from './slice-source.ts';
import { type StreamMetrics, streamMetrics } from './stream-metrics.ts';
import { peerIdentity, serverCredentials } from './tls.ts';
import { type StreamTiming, WaypointStream } from './waypoint-stream.ts';

export interface ConfigStreamServerOptions {
  readonly source: SliceSource;
  readonly listen: { readonly host: string; readonly port: number };
  /** The controller's own certificate; its trust bundle verifies the waypoints. */
  readonly credentials: Credentials;
  readonly log: Logger;
  /** Where the stream's metrics go (default: a registry of its own). */
  readonly metrics?: Registry;
  /** Quiet time after a change before a push (default 100 ms). */
  readonly debounceMs?: number;
  /** The longest a change waits in a busy burst (default 1 s). */
  readonly maxDelayMs?: number;
  /** How long a new stream may take to say which Gateway it serves (default 10 s). */
  readonly helloTimeoutMs?: number;
}

export interface ConfigStreamServer {
  readonly address: HostPort;
  /** Streams open now. */
  readonly connected: number;
  /** Ends every stream (the waypoints reconnect elsewhere) and stops listening. */
  close(): Promise<void>;
}

type Call = grpc.ServerDuplexStream<WaypointMessage, Push>;

export async function startConfigStreamServer(opts: ConfigStreamServerOptions): Promise<ConfigStreamServer> {
  const metrics = streamMetrics(opts.metrics ?? new Registry());
  const timing: StreamTiming = { debounceMs: opts.debounceMs ?? 100, maxDelayMs: opts.maxDelayMs ?? 1000 };
  const streams = new Set<WaypointStream>();
  const server = new grpc.Server({
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
  });
  server.addService(CONFIG_STREAM_SERVICE, {
    Subscribe: (call: Call) => serveStream(call, { ...opts, timing, metrics, streams }),
  });
  const target = formatAuthority(opts.listen.host, opts.listen.port);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(target, serverCredentials(opts.credentials), (err, bound) =>
      err
        ? reject(new Error(`cannot listen for the config stream on ${target}: ${err.message}`))
        : resolve(bound),
    );
  });
  const address = { ip: opts.listen.host, port };
  opts.log.info('config stream: listening', { address: formatAuthority(address.ip, port) });
  return {
    address,
    get connected() {
      return streams.size;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of streams) s.close();
        server.forceShutdown();
        resolve();
      }),
  };
}

interface StreamContext extends Omit<ConfigStreamServerOptions, 'metrics'> {
  readonly timing: StreamTiming;
  readonly metrics: StreamMetrics;
  readonly streams: Set<WaypointStream>;
}

/** Checks the peer, waits for its Hello, then runs its WaypointStream until either side ends. */
function serveStream(call: Call, ctx: StreamContext): void {
  const peer = peerIdentity(call.getAuthContext().sslPeerCertificate);
  const log = ctx.log.child({ peer: peer?.uri ?? call.getPeer() });
  const refuse = (code: grpc.status, reason: string, details: string): void => {
    ctx.metrics.refused.labels(reason).inc();
    log.warn('config stream: refused', { code: grpc.status[code], details });
    call.emit('error', { code, details });
  };
  const helloTimer = setTimeout(
    () => refuse(grpc.status.INVALID_ARGUMENT, 'invalid_argument', 'no Hello message in time'),
    ctx.helloTimeoutMs ?? 10_000,
  );
  let stream: WaypointStream | undefined;
  let gateway = '';
  const finish = (): void => {
    clearTimeout(helloTimer);
    if (!stream) return;
    stream.close();
    ctx.streams.delete(stream);
    ctx.metrics.connected.labels(gateway).dec();
    log.info('config stream: closed', { gateway });
    stream = undefined;
  };
  call.on('error', finish);
  call.on('close', finish);
  call.on('end', () => {
    finish();
    call.end();
  });
  call.on('data', (msg: WaypointMessage) => {
    if (stream) {
      if (msg.ack) stream.acknowledge(msg.ack.version, msg.ack.rejected);
      return;
    }
    clearTimeout(helloTimer);
    const problem = admission(msg, peer, ctx);
    if (problem) return refuse(problem.code, problem.reason, problem.details);
    gateway = msg.hello!.gateway;
    stream = new WaypointStream({
      gateway,
      source: ctx.source,
      write: (push) => call.write(push),
      timing: ctx.timing,
      metrics: ctx.metrics,
      log: log.child({ gateway }),
    });
    ctx.streams.add(stream);
    ctx.metrics.connected.labels(gateway).inc();
    log.info('config stream: opened', { gateway, node: msg.hello!.node || undefined });
    stream.start();
  });
}

interface Refusal {
  readonly code: grpc.status;
  readonly reason: string;
  readonly details: string;
}

/** Why this first message may not open a stream, or undefined when it may. */
function admission(
  msg: WaypointMessage,
  peer: ReturnType<typeof peerIdentity>,
  ctx: StreamContext,
): Refusal | undefined {
  const hello = msg.hello;
  if (!hello?.gateway)
    return {
      code: grpc.status.INVALID_ARGUMENT,
      reason: 'invalid_argument',
      details: 'the first message must be a Hello naming the Gateway',
    };
  const denied = (details: string): Refusal => ({
    code: grpc.status.PERMISSION_DENIED,
    reason: 'permission_denied',
    details,
  });
  if (!peer) return denied('the client certificate has no SPIFFE identity');
  const trustDomain = ctx.credentials.identity.trustDomain;
  if (peer.trustDomain !== trustDomain)
    return denied(`${peer.uri} is not in the trust domain ${trustDomain}`);
  if (!ctx.source.synced)
    return {
      code: grpc.status.UNAVAILABLE,
      reason: 'not_synced',
      details: 'the controller has not synced with the Kubernetes API yet',
    };
  const allowed = ctx.source.gatewaysFor(peer.namespace, peer.serviceAccount);
  if (!allowed.includes(hello.gateway))
    return denied(
      `${peer.uri} may not read the configuration of Gateway ${hello.gateway}` +
        (allowed.length
          ? ` (it may read: ${allowed.join(', ')})`
          : " (it is no waypoint Gateway's ServiceAccount)"),
    );
  return undefined;
}
