// Opaque TCP through the waypoint: one outbound tunnel per inbound tunnel, bytes copied both ways
// with backpressure, half-close passed on (a FIN is an END_STREAM on the tunnel, each direction on
// its own), and either side's failure resetting the other.
import http2, { type ServerHttp2Stream } from 'node:http2';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Endpoint } from '../../config/model.ts';
import type { HboneClient } from '../hbone/client.ts';
import { acceptTunnel } from '../hbone/server.ts';
import type { Logger } from '../observe/logger.ts';
import type { Metrics } from '../observe/metrics.ts';
import type { TunnelInfo } from '../pipeline/context.ts';
import type { Cluster } from '../upstream/cluster.ts';
import type { EndpointPicker } from '../upstream/endpoint-picker.ts';
import { isPlain, openEndpoint } from '../upstream/open-endpoint.ts';
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
  const binding = tunnel.binding;
  const svc = binding.kind === 'service' ? binding.service : undefined;
  const labels = {
    sourceNamespace: tunnel.peer.namespace,
    sourcePrincipal: tunnel.peer.uri,
    destinationService: svc?.hostname ?? 'unknown',
    destinationServiceName: svc?.name ?? 'unknown',
    destinationServiceNamespace:
      svc?.namespace ?? (binding.kind === 'workload' ? binding.pod.namespace : 'unknown'),
    destinationPrincipal: 'unknown',
    flags: '-',
  };
  const routed = deps.route?.(tunnel);
  let endpoint: Endpoint | undefined;
  if (routed === undefined) {
    endpoint = deps.picker.pick(deps.picker.candidates(binding, tunnel.destination.port));
  } else if ('cluster' in routed) {
    const choice = deps.picker.choose(routed.cluster, { headers: {}, path: '', sourceIp: tunnel.source.ip });
    endpoint = choice.kind === 'endpoint' ? choice.endpoint : undefined;
  }
  const fail = (reason: 'no_healthy_upstream' | 'upstream_connect_failure', detail: string): void => {
    deps.log.warn('tcp: cannot reach destination', { reason, detail, source: tunnel.peer.uri });
    deps.metrics.tcp({ ...labels, flags: reason === 'no_healthy_upstream' ? 'UH' : 'UF' }).closed.inc();
    // Before the 200 the client learns why; after it, only a reset is left.
    if (!alreadyAccepted && !stream.headersSent) {
      stream.respond({ ':status': 503, 'content-type': 'text/plain', 'x-waypoint-reason': reason });
      stream.end(
        reason === 'no_healthy_upstream'
          ? 'no healthy upstream'
          : 'upstream connect error or disconnect/reset before headers. reset reason: connection failure',
      );
    } else {
      stream.close(http2.constants.NGHTTP2_CONNECT_ERROR);
    }
  };
  if (!endpoint) {
    fail('no_healthy_upstream', routed && 'invalid' in routed ? routed.invalid : 'no ready endpoint');
    return;
  }
  const release = deps.picker.begin(endpoint);
  // A plain (egress) endpoint proves no identity.
  const counters = deps.metrics.tcp({
    ...labels,
    destinationPrincipal: isPlain(endpoint) ? 'unknown' : endpoint.identity,
  });
  try {
    const upstream = await openEndpoint(
      deps.hbone,
      deps.hbonePort,
      endpoint,
      tunnelHeaders(serviceHostOf(binding), deps.baggage, tunnel.source),
    );
    if (stream.destroyed) {
      upstream.destroy();
      return;
    }
    if (!alreadyAccepted) acceptTunnel(stream);
    counters.opened.inc();
    if (leftover && leftover.length > 0) {
      counters.received.inc(leftover.length);
      upstream.write(leftover);
    }
    await splice(stream, upstream, (received, sent) => {
      if (received) counters.received.inc(received);
      if (sent) counters.sent.inc(sent);
    });
    counters.closed.inc();
  } catch (err) {
    fail('upstream_connect_failure', (err as Error).message);
  } finally {
    release();
  }
}
