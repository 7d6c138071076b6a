// A ztunnel stand-in, outbound half: accepts plain TCP on a local address and carries each
// connection in an HBONE tunnel to a waypoint, as the client's identity, to a fixed original
// destination (a Service VIP:port or pod IP:port) — what ztunnel does for a captured pod.

import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { formatAuthority, type HostPort } from '../hbone/authority.ts';
import { HboneClient } from '../hbone/client.ts';
import type { Credentials } from '../identity/credentials.ts';
import type { Logger } from '../observe/logger.ts';
import { splice } from '../proxy/tcp-proxy.ts';

export interface OutboundOptions {
  readonly listen: HostPort;
  /** The waypoint's HBONE address. */
  readonly waypoint: HostPort;
  /** The identity the waypoint must present. */
  readonly waypointIdentity: string;
  /** The original destination, sent as :authority. */
  readonly destination: HostPort;
  readonly credentials: Credentials;
  readonly log: Logger;
}

export class OutboundTunnel {
  readonly #server: net.Server;
  readonly #client: HboneClient;
  readonly #opts: OutboundOptions;
  readonly #sockets = new Set<net.Socket>();

  constructor(opts: OutboundOptions) {
    this.#opts = opts;
    this.#client = new HboneClient(opts.credentials);
    this.#server = net.createServer({ allowHalfOpen: true }, (socket) => this.#onConnection(socket));
  }

  listen(): Promise<HostPort> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#opts.listen.port, this.#opts.listen.ip, () => {
        const a = this.#server.address() as AddressInfo;
        resolve({ ip: a.address, port: a.port });
      });
    });
  }

  close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    this.#client.close();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  async #onConnection(socket: net.Socket): Promise<void> {
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    socket.on('error', () => {});
    socket.setNoDelay(true);
    socket.pause();
    const { destination, waypoint, waypointIdentity } = this.#opts;
    const client = { ip: socket.remoteAddress ?? '127.0.0.1', port: socket.remotePort ?? 0 };
    try {
      const tunnel = await this.#client.open(
        { ip: waypoint.ip, hbonePort: waypoint.port, identity: waypointIdentity },
        formatAuthority(destination.ip, destination.port),
        { forwarded: `for="${formatAuthority(client.ip, client.port)}"` },
      );
      if (socket.destroyed) {
        tunnel.destroy();
        return;
      }
      socket.resume();
      await splice(socket, tunnel);
    } catch (err) {
      this.#opts.log.warn('tunnel outbound: CONNECT failed', {
        destination: formatAuthority(destination.ip, destination.port),
        error: (err as Error).message,
      });
      socket.destroy();
    }
  }
}
