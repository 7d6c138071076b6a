// Opaque TCP through the waypoint: one outbound tunnel per inbound tunnel, bytes copied both ways
// with backpressure, half-close passed on (a FIN is an END_STREAM on the tunnel, each direction on
// its own), and either side's failure resetting the other.
import http2, { type ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { Endpoint } from '../../config/model.ts';
import { formatAuthority } from '../hbone/authority.ts';
import type { HboneClient } from '../hbone/client.ts';
import { acceptTunnel } from '../hbone/server.ts';
import type { Logger } from '../observe/logger.ts';
import type { Metrics } from '../observe/metrics.ts';
import type { TunnelInfo } from '../pipeline/context.ts';
import type { EndpointPicker } from '../upstream/endpoint-picker.ts';
import { tunnelHeaders } from '../upstream/tunnel-headers.ts';

export interface TcpProxyDeps {
  readonly hbone: HboneClient;
  readonly picker: EndpointPicker;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly hbonePort: number;
  readonly baggage: string;
}

/** Splices two duplexes; resolves when both directions are done. */
export function splice(a: Duplex, b: Duplex, onBytes?: (aToB: number, bToA: number) => void): Promise<void> {
  return new Promise((resolve) => {
    let open = 2;
    let failed = false;
    const fail = (): void => {
      if (failed) return;
      failed = true;
      a.destroy();
      b.destroy();
      resolve();
    };
    const oneWay = (from: Duplex, to: Duplex, count: (n: number) => void): void => {
      from.on('data', (chunk: Buffer) => {
        count(chunk.length);
        if (!to.write(chunk)) from.pause();
      });
      to.on('drain', () => from.resume());
      from.once('end', () => {
        to.end();
        if (--open === 0) resolve();
      });
    };
    oneWay(a, b, (n) => onBytes?.(n, 0));
    oneWay(b, a, (n) => onBytes?.(0, n));
    a.once('error', fail);
    b.once('error', fail);
    a.once('close', () => !a.readableEnded && fail());
    b.once('close', () => !b.readableEnded && fail());
  });
}

export async function proxyTcp(
  stream: ServerHttp2Stream,
  tunnel: TunnelInfo,
  deps: TcpProxyDeps,
  alreadyAccepted: boolean,
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
  const endpoint: Endpoint | undefined = deps.picker.pick(
    deps.picker.candidates(binding, tunnel.destination.port),
  );
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
    fail('no_healthy_upstream', 'no ready endpoint');
    return;
  }
  const release = deps.picker.begin(endpoint);
  const counters = deps.metrics.tcp({ ...labels, destinationPrincipal: endpoint.identity });
  try {
    const upstream = await deps.hbone.open(
      { ip: endpoint.ip, hbonePort: deps.hbonePort, identity: endpoint.identity },
      formatAuthority(endpoint.ip, endpoint.port),
      tunnelHeaders(binding, deps.baggage, tunnel.source),
    );
    if (stream.destroyed) {
      upstream.destroy();
      return;
    }
    if (!alreadyAccepted) acceptTunnel(stream);
    counters.opened.inc();
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
