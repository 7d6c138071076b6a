// WebSocket through the waypoint: a `ws` client whose socket is an HBONE tunnel (as ztunnel would
// carry a captured pod's connection), a `ws` server on a pod behind a ztunnel stand-in. Frames of
// both kinds, close frames with their codes (a proxy that drops the close handshake makes browsers
// report 1006), a refused upgrade relayed as is, and abrupt closes propagating both ways.
import http from 'node:http';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HboneClient } from '../../src/hbone/client.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

// `ws` ships no types (and @types/ws is not a dependency): describe the little used here.
interface WsSocket {
  readonly readyState: number;
  readonly protocol: string;
  send(data: string | Buffer, cb?: (err?: Error) => void): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  on(event: 'message', cb: (data: Buffer, isBinary: boolean) => void): this;
  on(event: 'close', cb: (code: number, reason: Buffer) => void): this;
  on(event: 'error', cb: (err: Error) => void): this;
  on(event: 'open', cb: () => void): this;
  on(event: 'unexpected-response', cb: (req: http.ClientRequest, res: http.IncomingMessage) => void): this;
  once(event: string, cb: (...args: never[]) => void): this;
}
interface WsServer {
  on(event: 'connection', cb: (ws: WsSocket, req: http.IncomingMessage) => void): this;
  handleUpgrade(
    req: http.IncomingMessage,
    socket: Duplex,
    head: Buffer,
    cb: (ws: WsSocket, req: http.IncomingMessage) => void,
  ): void;
  close(): void;
}
interface WsModule {
  WebSocket: new (
    url: string,
    protocols: string[] | undefined,
    opts: { createConnection: () => Duplex; headers?: Record<string, string> },
  ) => WsSocket;
  WebSocketServer: new (opts: { noServer: true }) => WsServer;
}
const ws = createRequire(import.meta.url)('ws') as WsModule;

const WAYPOINT_IP = '127.0.0.3';
const ECHO = { ip: '127.0.30.10', port: 8080 };
const REFUSE = { ip: '127.0.30.20', port: 8080 };

describe('WebSocket through the waypoint', () => {
  let mesh: TestMesh;
  let waypoint: Waypoint;
  let client: HboneClient;
  /** Server-side sockets in the order they connected, with how each one closed. */
  const serverSide: Array<{ ws: WsSocket; path: string; closed: Promise<[number, string]> }> = [];

  beforeAll(async () => {
    mesh = await TestMesh.create();
    await mesh.writeConfig(
      'mesh.yaml',
      [
        waypointYaml(),
        serviceYaml({
          name: 'chat',
          vip: ECHO.ip,
          port: ECHO.port,
          portName: 'http-ws',
          pods: [{ name: 'chat-a', ip: '127.0.40.11' }],
        }),
        serviceYaml({
          name: 'picky',
          vip: REFUSE.ip,
          port: REFUSE.port,
          pods: [{ name: 'picky-a', ip: '127.0.40.21' }],
        }),
      ].join('---\n'),
    );

    // The echo backend: echoes every message with its type; `/close-from-server/CODE` closes with CODE
    // after the first message; `/terminate` drops the TCP connection after the first message.
    const wss = new ws.WebSocketServer({ noServer: true });
    const echo = http.createServer((_req, res) => res.writeHead(426).end());
    echo.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      wss.handleUpgrade(req, socket, head, (sock) => {
        const path = req.url ?? '/';
        const closed = new Promise<[number, string]>((resolve) =>
          sock.on('close', (code, reason) => resolve([code, reason.toString()])),
        );
        sock.on('error', () => {});
        serverSide.push({ ws: sock, path, closed });
        // Sent in the same breath as the 101: the frame may share a packet with the response head.
        if (path === '/greet') sock.send('welcome');
        sock.on('message', (data, isBinary) => {
          if (path.startsWith('/close-from-server/')) {
            sock.close(Number(path.split('/')[2]), 'server says bye');
            return;
          }
          if (path === '/terminate') {
            sock.terminate();
            return;
          }
          sock.send(isBinary ? data : data.toString('utf8'));
        });
      });
    });
    mesh.onClose(() => wss.close());
    await mesh.pod('127.0.40.11', ECHO.port, echo, id('shop', 'chat'));

    // A backend that refuses every upgrade with 400 and a body.
    const picky = http.createServer((_req, res) => res.writeHead(404).end());
    picky.on('upgrade', (_req: http.IncomingMessage, socket: Duplex) => {
      const body = 'no websockets for you';
      socket.end(
        `HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nx-backend: picky\r\nconnection: close\r\n\r\n${body}`,
      );
    });
    await mesh.pod('127.0.40.21', REFUSE.port, picky, id('shop', 'picky'));

    waypoint = await mesh.startWaypoint({
      ip: WAYPOINT_IP,
    });
    client = await mesh.hboneClient(id('shop', 'browser'));
  });
  afterAll(() => mesh.close());

  /** A WebSocket whose TCP connection is an HBONE tunnel to the VIP through the waypoint. */
  async function connect(dest: { ip: string; port: number }, path: string): Promise<WsSocket> {
    const tunnel = await TestMesh.tunnel(client, waypoint.addresses!.hbone, dest);
    const sock = new ws.WebSocket(`ws://${dest.ip}:${dest.port}${path}`, ['chat.v1'], {
      createConnection: () => tunnel,
    });
    sock.on('error', () => {});
    return sock;
  }

  async function opened(sock: WsSocket): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      sock.once('open', () => resolve());
      sock.once('error', (err: never) => reject(err));
      sock.once('unexpected-response', () => reject(new Error('unexpected response')));
    });
  }

  function nextMessage(sock: WsSocket): Promise<{ data: Buffer; isBinary: boolean }> {
    return new Promise((resolve) =>
      sock.once('message', ((data: Buffer, isBinary: boolean) => resolve({ data, isBinary })) as never),
    );
  }

  function closedWith(sock: WsSocket): Promise<[number, string]> {
    return new Promise((resolve) =>
      sock.once('close', ((code: number, reason: Buffer) => resolve([code, reason.toString()])) as never),
    );
  }

  /** The server side of the connection that opened last on `path`. */
  async function serverFor(path: string): Promise<(typeof serverSide)[number]> {
    for (let i = 0; i < 100; i++) {
      const found = serverSide.findLast((s) => s.path === path);
      if (found) return found;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no server-side socket for ${path}`);
  }

  it('echoes text and binary frames, keeping their types and the negotiated subprotocol', async () => {
    const sock = await connect(ECHO, '/echo');
    await opened(sock);
    expect(sock.protocol).toBe('chat.v1');

    for (const text of ['hello', 'ünïcødé ✓', 'x'.repeat(100_000)]) {
      const reply = nextMessage(sock);
      sock.send(text);
      const got = await reply;
      expect(got.isBinary).toBe(false);
      expect(got.data.toString('utf8')).toBe(text);
    }
    for (const size of [1, 125, 126, 65_535, 65_536, 1_000_000]) {
      const payload = Buffer.alloc(size);
      for (let i = 0; i < size; i++) payload[i] = (i * 31 + size) & 0xff;
      const reply = nextMessage(sock);
      sock.send(payload);
      const got = await reply;
      expect(got.isBinary).toBe(true);
      expect(got.data.equals(payload)).toBe(true);
    }

    // Many messages in flight at once arrive in order.
    const received: string[] = [];
    const all = new Promise<void>((resolve) =>
      sock.on('message', (data) => {
        received.push(data.toString());
        if (received.length === 500) resolve();
      }),
    );
    for (let i = 0; i < 500; i++) sock.send(`m${i}`);
    await all;
    expect(received).toEqual(Array.from({ length: 500 }, (_, i) => `m${i}`));

    const closed = closedWith(sock);
    sock.close(1000, 'done');
    expect(await closed).toEqual([1000, 'done']);
  });

  it('delivers a message the server sends right after the handshake', async () => {
    const sock = await connect(ECHO, '/greet');
    const first = nextMessage(sock);
    await opened(sock);
    expect((await first).data.toString()).toBe('welcome');
    const closed = closedWith(sock);
    sock.close(1000);
    expect((await closed)[0]).toBe(1000);
  });

  it("delivers the client's close frame to the server with its code, and the echo back (no 1006)", async () => {
    const sock = await connect(ECHO, '/client-closes');
    await opened(sock);
    const server = await serverFor('/client-closes');
    const clientClosed = closedWith(sock);
    sock.close(4001, 'client says bye');
    // ws reports the code of the close frame it received; 1006 means the connection just dropped.
    expect(await server.closed).toEqual([4001, 'client says bye']);
    expect(await clientClosed).toEqual([4001, 'client says bye']);
  });

  it("delivers the server's close frame to the client with its code", async () => {
    const sock = await connect(ECHO, '/close-from-server/4002');
    await opened(sock);
    const clientClosed = closedWith(sock);
    sock.send('please close');
    expect(await clientClosed).toEqual([4002, 'server says bye']);
    const server = await serverFor('/close-from-server/4002');
    expect(await server.closed).toEqual([4002, 'server says bye']);
  });

  it('relays a refused upgrade (400 from the backend) as 400 with its body', async () => {
    const sock = await connect(REFUSE, '/socket');
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      sock.on('unexpected-response', (_req, r) => resolve(r));
      sock.on('open', () => reject(new Error('upgrade unexpectedly succeeded')));
    });
    expect(res.statusCode).toBe(400);
    expect(res.headers['x-backend']).toBe('picky');
    let body = '';
    res.setEncoding('utf8');
    for await (const chunk of res) body += chunk;
    expect(body).toBe('no websockets for you');
  });

  it('closes the server side when the client drops its connection', async () => {
    const sock = await connect(ECHO, '/client-drops');
    await opened(sock);
    const server = await serverFor('/client-drops');
    // Prove the path works, then drop the TCP connection (the tunnel) without a close frame.
    const reply = nextMessage(sock);
    sock.send('ping');
    expect((await reply).data.toString()).toBe('ping');
    sock.terminate();
    const [code] = await server.closed;
    expect(code).toBe(1006);
  });

  it('closes the client side when the server drops its connection', async () => {
    const sock = await connect(ECHO, '/terminate');
    await opened(sock);
    const clientClosed = closedWith(sock);
    sock.send('bye');
    const [code] = await clientClosed;
    expect(code).toBe(1006);
    expect(sock.readyState).toBe(3 /* CLOSED */);
  });

  it('handles many WebSockets at once over one HBONE connection', async () => {
    const socks = await Promise.all(Array.from({ length: 20 }, (_, i) => connect(ECHO, `/many/${i}`)));
    await Promise.all(socks.map(opened));
    const replies = await Promise.all(
      socks.map(async (s, i) => {
        const r = nextMessage(s);
        s.send(`from ${i}`);
        return (await r).data.toString();
      }),
    );
    expect(replies).toEqual(socks.map((_, i) => `from ${i}`));
    await Promise.all(
      socks.map(async (s) => {
        const c = closedWith(s);
        s.close(1000);
        expect((await c)[0]).toBe(1000);
      }),
    );
    expect(client.sessionCount).toBe(1);
  });

  it('keeps the waypoint free of leftover tunnels after the sockets closed', async () => {
    // Every socket of the earlier tests is closed: the waypoint holds no in-flight exchanges.
    for (let i = 0; i < 100 && waypoint.inFlight > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(waypoint.inFlight).toBe(0);
  });
});
