// A ztunnel stand-in, inbound half: terminates HBONE on ENDPOINT_IP:15008 as the pod's identity and
// forwards each tunnel to the application over plain TCP, answering 200 only once that connection
// is up (503 if it fails, 400 for an :authority that is not this pod), as ztunnel's inbound does.
// Every accepted tunnel is reported with the peer's identity, so tests can see who called.

import type { ServerHttp2Stream } from 'node:http2';
import net from 'node:net';
import { formatAuthority, type HostPort } from '../hbone/authority.ts';
import { acceptTunnel, type ConnectRequest, HboneServer, refuseTunnel } from '../hbone/server.ts';
import type { Credentials } from '../identity/credentials.ts';
import type { Logger } from '../observe/logger.ts';
import { splice } from '../proxy/tcp-proxy.ts';

export interface InboundOptions {
  readonly listen: HostPort;
  /** Where the application listens; default: the CONNECT :authority itself. */
  readonly forward?: HostPort;
  readonly credentials: Credentials;
  readonly log: Logger;
  readonly onTunnel?: (req: ConnectRequest) => void;
}

export class InboundTunnel {
  readonly #server: HboneServer;
  readonly #opts: InboundOptions;

  constructor(opts: InboundOptions) {
    this.#opts = opts;
    this.#server = new HboneServer(
      opts.credentials,
      {
        route: (req) => {
          if (req.authority.ip !== opts.listen.ip && opts.listen.ip !== '0.0.0.0') {
            return {
              accept: false,
              reason: 'hbone_bad_authority',
              detail: `${req.authority.ip} is not this pod (${opts.listen.ip})`,
            };
          }
          return { accept: true, serve: (stream) => void this.#serve(stream, req) };
        },
      },
      opts.log,
    );
  }

  listen(): Promise<HostPort> {
    return this.#server.listen(this.#opts.listen.ip, this.#opts.listen.port);
  }

  close(): Promise<void> {
    return this.#server.close();
  }

  async #serve(stream: ServerHttp2Stream, req: ConnectRequest): Promise<void> {
    const target = this.#opts.forward ?? req.authority;
    // Half-open: the app may finish writing after the client's FIN (and the reverse), as TCP allows.
    const app = net.connect({ host: target.ip, port: target.port, allowHalfOpen: true });
    app.setNoDelay(true);
    app.on('error', () => {});
    const connected = await new Promise<boolean>((resolve) => {
      app.once('connect', () => resolve(true));
      app.once('error', () => resolve(false));
    });
    if (!connected) {
      this.#opts.log.warn('tunnel inbound: application refused', {
        target: formatAuthority(target.ip, target.port),
      });
      refuseTunnel(stream, 'upstream_connect_failure');
      return;
    }
    this.#opts.onTunnel?.(req);
    this.#opts.log.debug('tunnel inbound: accepted', {
      peer: req.peer.uri,
      authority: formatAuthority(req.authority.ip, req.authority.port),
    });
    acceptTunnel(stream);
    await splice(stream, app);
  }
}
