// Opaque TCP through the waypoint: one outbound tunnel per inbound tunnel, bytes copied both ways
// with backpressure, half-close passed on (a FIN is an END_STREAM on the tunnel, each direction on
// its own), and either side's failure resetting the other.
import http2, { type ServerHttp2Stream } from 'node:http2';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Endpoint } from '../../config/model.ts';
import { formatAuthority } from '../hbone/authority.ts';
import type { HboneClient } from '../hbone/client.ts';
import { acceptTunnel, refuseTunnel } from '../hbone/server.ts';
import { type AccessLog, telemetryChoice } from '../observe/access-log.ts';
import type { Logger } from '../observe/logger.ts';
import type { Metrics, TcpLabels } from '../observe/metrics.ts';
import type { TunnelInfo } from '../pipeline/context.ts';
import { reasonInfo } from '../pipeline/reasons.ts';
import { type Cluster, clusterName } from '../upstream/cluster.ts';
import type { EndpointPicker } from '../upstream/endpoint-picker.ts';
import { hostKey } from '../upstream/load-balancer.ts';
import { openEndpoint } from '../upstream/open-endpoint.ts';
import { serviceHostOf, tunnelHeaders } from '../upstream/tunnel-headers.ts';

export interface TcpProxyDeps {
  readonly hbone: HboneClient;
  readonly picker: EndpointPicker;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly hbonePort: number;
  readonly baggage: string;
  /**
   * Where a tunnel goes when routing decides it (TCPRoute / VirtualService tcp weights, a
   * DestinationRule's load balancer): a cluster, a reason it cannot go anywhere, or undefined for
   * the tunnel's own binding.
   */
  readonly route?: (tunnel: TunnelInfo) => { cluster: Cluster } | { invalid: string } | undefined;
  /** A line per connection, as Envoy's TCP proxy logs one. */
  readonly accessLog?: AccessLog;
}

/** What the access log line of one TCP connection needs, filled in as the connection goes. */
interface TcpLogState {
  readonly start: Date;
  readonly startNs: bigint;
  received: number;
  sent: number;
  upstreamHost: string | undefined;
  cluster: string | undefined;
}

/** The istio_tcp_* labels before an endpoint is chosen (the destination is set once it is). */
function tcpLabels(tunnel: TunnelInfo, peers: Metrics['peers']): TcpLabels {
  const b = tunnel.binding;
  const svc = b.kind === 'service' ? b.service : undefined;
  return {
    source: tunnel.sourceWorkload ?? peers.sourceOf(tunnel),
    destination: peers.destination(undefined, b),
    destinationService: svc?.hostname ?? 'unknown',
    destinationServiceName: svc?.name ?? 'unknown',
    destinationServiceNamespace: svc?.namespace ?? (b.kind === 'workload' ? b.pod.namespace : 'unknown'),
    flags: '-',
  };
}

function tcpLogState(
  tunnel: TunnelInfo,
  routed: ReturnType<NonNullable<TcpProxyDeps['route']>>,
): TcpLogState {
  const b = tunnel.binding;
  return {
    start: new Date(),
    startNs: process.hrtime.bigint(),
    received: 0,
    sent: 0,
    upstreamHost: undefined,
    cluster:
      routed && 'cluster' in routed
        ? routed.cluster.name
        : b.kind === 'service'
          ? clusterName(b.port, undefined, b.service.hostname, b.protocol)
          : undefined,
  };
}

function logTcp(
  deps: TcpProxyDeps,
  tunnel: TunnelInfo,
  st: TcpLogState,
  reason: 'via_upstream' | 'no_healthy_upstream' | 'upstream_connect_failure',
  detail?: string,
): void {
  const b = tunnel.binding;
  const host = b.kind === 'service' ? b.service.hostname : undefined;
  deps.accessLog?.writeTcp(
    {
      start: st.start,
      flags: reasonInfo(reason).flag,
      reason,
      detail,
      bytesReceived: st.received,
      bytesSent: st.sent,
      durationMs: Number(process.hrtime.bigint() - st.startNs) / 1e6,
      upstreamHost: st.upstreamHost,
      upstreamCluster: st.cluster,
      downstreamLocal: formatAuthority(tunnel.destination.ip, tunnel.destination.port),
      downstreamRemote: formatAuthority(tunnel.source.ip, tunnel.source.port),
    },
    telemetryChoice(tunnel.snapshot, host),
  );
}

/** An HTTP/2 stream (a tunnel) rather than a socket: it has an RST_STREAM code. */
function isHttp2Stream(s: Duplex): s is Duplex & { close(code: number): void; rstCode?: number } {
  return 'rstCode' in s && typeof (s as { close?: unknown }).close === 'function';
}

/**
 * Tears one side down as a reset, never as an orderly end (RFC 9113 §8.5): a tunnel gets
 * RST_STREAM CONNECT_ERROR (a plain destroy() would send NO_ERROR, which Node and ztunnel read as
 * EOF), a TCP socket gets an RST.
 */
function reset(s: Duplex): void {
  if (s.destroyed) return;
  try {
    if (isHttp2Stream(s)) s.close(http2.constants.NGHTTP2_CONNECT_ERROR);
    else if (s instanceof net.Socket) s.resetAndDestroy();
    else s.destroy();
  } catch {
    s.destroy();
  }
}

/**
 * Splices two duplexes; resolves when both directions are done. Each direction ends on its own
 * (half-close); a failure of either side (an error, a reset, a tunnel closed while bytes could
 * still flow into it) resets both, so a reset is seen as a reset at both ends, not as a clean end.
 */
export function splice(a: Duplex, b: Duplex, onBytes?: (aToB: number, bToA: number) => void): Promise<void> {
  return new Promise((resolve) => {
    let failed = false;
    /** Sources whose end has been passed on. */
    const ended = new Set<Duplex>();
    const fail = (): void => {
      if (failed) return;
      failed = true;
      reset(a);
      reset(b);
      resolve();
    };
    const oneWay = (from: Duplex, to: Duplex, count: (n: number) => void): void => {
      from.on('data', (chunk: Buffer) => {
        count(chunk.length);
        if (!to.write(chunk)) from.pause();
      });
      to.on('drain', () => from.resume());
      const onEnd = (): void => {
        const passOn = (): void => {
          if (failed) return;
          ended.add(from);
          to.end();
          if (ended.size === 2) resolve();
        };
        // Node ends an HTTP/2 stream's readable side before it reports the reset that ended it
        // ('end', then 'aborted' and 'error'): wait a turn so a reset is not passed on as a FIN.
        if (isHttp2Stream(from)) setImmediate(passOn);
        else passOn();
      };
      // A source that already ended (the sniffer saw its FIN) will not say so again.
      if (from.readableEnded) onEnd();
      else from.once('end', onEnd);
    };
    oneWay(a, b, (n) => onBytes?.(n, 0));
    oneWay(b, a, (n) => onBytes?.(0, n));
    // A 'data' listener does not restart a stream someone paused explicitly (the sniffer does).
    a.resume();
    b.resume();
    for (const [self, other] of [
      [a, b],
      [b, a],
    ] as const) {
      self.on('error', fail);
      self.once('close', () => {
        // Closed before its own bytes ended: a failure.
        if (!self.readableEnded) fail();
        // A tunnel closed while the other side may still send into it: the peer reset it
        // (RST_STREAM NO_ERROR or CANCEL also end the readable side), nothing can reach it now.
        else if (isHttp2Stream(self) && !ended.has(other) && !other.readableEnded) fail();
      });
    }
  });
}

export async function proxyTcp(
  stream: ServerHttp2Stream,
  tunnel: TunnelInfo,
  deps: TcpProxyDeps,
  alreadyAccepted: boolean,
  /** Bytes the client sent before its FIN while the stream was being sniffed (the stream has ended). */
  leftover?: Buffer,
): Promise<void> {
  const labels = tcpLabels(tunnel, deps.metrics.peers);
  const routed = deps.route?.(tunnel);
  const st = tcpLogState(tunnel, routed);
  const fail = (reason: TcpFailure, detail: string): void =>
    failTcp(stream, tunnel, deps, { labels, st, alreadyAccepted }, reason, detail);
  const endpoint = tcpEndpoint(tunnel, deps, routed);
  if (!endpoint) {
    fail('no_healthy_upstream', routed && 'invalid' in routed ? routed.invalid : 'no ready endpoint');
    return;
  }
  const release = deps.picker.begin(endpoint);
  st.upstreamHost = hostKey(endpoint);
  try {
    const upstream = await openEndpoint(
      deps.hbone,
      deps.hbonePort,
      endpoint,
      tunnelHeaders(serviceHostOf(tunnel.binding), deps.baggage, tunnel.source),
    );
    if (stream.destroyed) {
      upstream.destroy();
      return;
    }
    if (!alreadyAccepted) acceptTunnel(stream);
    await carry(stream, upstream, endpoint, tunnel, deps, labels, st, leftover);
  } catch (err) {
    fail('upstream_connect_failure', (err as Error).message);
  } finally {
    release();
  }
}

type TcpFailure = 'no_healthy_upstream' | 'upstream_connect_failure';

/** The endpoint for the tunnel: routing's cluster when it chose one, else the tunnel's own binding. */
function tcpEndpoint(
  tunnel: TunnelInfo,
  deps: TcpProxyDeps,
  routed: ReturnType<NonNullable<TcpProxyDeps['route']>>,
): Endpoint | undefined {
  if (routed === undefined)
    return deps.picker.pick(deps.picker.candidates(tunnel.binding, tunnel.destination.port));
  if (!('cluster' in routed)) return undefined;
  const choice = deps.picker.choose(routed.cluster, { headers: {}, path: '', sourceIp: tunnel.source.ip });
  return choice.kind === 'endpoint' ? choice.endpoint : undefined;
}

/** Counted, logged, and told: before the 200 the client gets the reason's reply; after it, a reset. */
function failTcp(
  stream: ServerHttp2Stream,
  tunnel: TunnelInfo,
  deps: TcpProxyDeps,
  at: { labels: TcpLabels; st: TcpLogState; alreadyAccepted: boolean },
  reason: TcpFailure,
  detail: string,
): void {
  deps.log.warn('tcp: cannot reach destination', { reason, detail, source: tunnel.peer.uri });
  deps.metrics.tcp({ ...at.labels, flags: reasonInfo(reason).flag }).closed.inc();
  logTcp(deps, tunnel, at.st, reason, detail);
  if (!at.alreadyAccepted && !stream.headersSent) refuseTunnel(stream, reason);
  else stream.close(http2.constants.NGHTTP2_CONNECT_ERROR);
}

/** Copies bytes both ways until both directions are done, counting them for metrics and the log. */
async function carry(
  stream: ServerHttp2Stream,
  upstream: Duplex,
  endpoint: Endpoint,
  tunnel: TunnelInfo,
  deps: TcpProxyDeps,
  labels: TcpLabels,
  st: TcpLogState,
  leftover: Buffer | undefined,
): Promise<void> {
  // A plain (egress) endpoint proves no identity (peers.destination reports it unknown).
  const counters = deps.metrics.tcp({
    ...labels,
    destination: deps.metrics.peers.destination(endpoint, tunnel.binding),
  });
  counters.opened.inc();
  deps.metrics.hosts.connection(hostKey(endpoint));
  if (leftover && leftover.length > 0) {
    counters.received.inc(leftover.length);
    st.received += leftover.length;
    upstream.write(leftover);
  }
  await splice(stream, upstream, (received, sent) => {
    if (received) counters.received.inc(received);
    if (sent) counters.sent.inc(sent);
    st.received += received;
    st.sent += sent;
  });
  counters.closed.inc();
  logTcp(deps, tunnel, st, 'via_upstream');
}
