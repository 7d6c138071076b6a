// The one place that decides how bytes reach an endpoint: an HBONE tunnel to ip:15008 carrying
// CONNECT ip:port (mesh workloads), or, for endpoints marked `plain` (MESH_EXTERNAL ServiceEntry
// endpoints), a direct TCP connection to ip:port with no mTLS and no identity check: egress, as
// Istio's waypoint does it. Failures of either become TunnelErrors, so every transport maps them
// onto the same ProxyErrors (connect-error.ts).
import type { OutgoingHttpHeaders } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Endpoint } from '../../config/model.ts';
import { formatAuthority } from '../hbone/authority.ts';
import { type HboneClient, TunnelError } from '../hbone/client.ts';

const PLAIN_CONNECT_TIMEOUT_MS = 10_000;

export function isPlain(endpoint: Endpoint): boolean {
  return endpoint.transport === 'plain';
}

/** A stream to the endpoint's ip:port, by the endpoint's transport. */
export function openEndpoint(
  hbone: HboneClient,
  hbonePort: number,
  endpoint: Endpoint,
  headers: OutgoingHttpHeaders,
): Promise<Duplex> {
  if (isPlain(endpoint)) return openPlain(endpoint);
  return hbone.open(
    { ip: endpoint.ip, hbonePort, identity: endpoint.identity },
    formatAuthority(endpoint.ip, endpoint.port),
    headers,
  );
}

/** A TCP connection to ip:port; resolves once connected. */
export function openPlain(endpoint: Endpoint, timeoutMs = PLAIN_CONNECT_TIMEOUT_MS): Promise<net.Socket> {
  const where = formatAuthority(endpoint.ip, endpoint.port);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: endpoint.ip, port: endpoint.port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new TunnelError('connect', `TCP ${where}: connect timeout after ${timeoutMs} ms`));
    }, timeoutMs);
    timer.unref();
    const onError = (err: Error): void => {
      clearTimeout(timer);
      reject(new TunnelError('connect', `TCP ${where}: ${err.message}`, undefined, err));
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      // Whoever takes the socket listens for errors too; this keeps one in the gap from crashing us.
      socket.on('error', () => {});
      resolve(socket);
    });
  });
}
