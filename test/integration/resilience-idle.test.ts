// The stream idle timeout (run --stream-idle-timeout; Envoy's stream_idle_timeout): a stream with no
// byte either way for that long ends, 408 `stream timeout` (SI) before the response head, a reset
// after it; streams that keep moving live on, however long they last; WebSocket included.
import http from 'node:http';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { HboneClient } from '../../src/hbone/client.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';
import { until } from '../helpers/until.ts';

interface WsSocket {
  send(data: string): void;
  close(): void;
  on(event: 'message', cb: (data: Buffer) => void): this;
  on(event: 'close', cb: (code: number) => void): this;
  on(event: 'error', cb: (err: Error) => void): this;
  once(event: 'open', cb: () => void): this;
}
interface WsModule {
  WebSocket: new (url: string, protocols: undefined, opts: { createConnection: () => Duplex }) => WsSocket;
  WebSocketServer: new (opts: {
    noServer: true;
  }) => {
    handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, cb: (ws: WsSocket) => void): void;
    close(): void;
  };
}
const ws = createRequire(import.meta.url)('ws') as WsModule;

const IDLE_MS = 400;
const APP = { ip: '127.0.185.1', port: 8080 };

let mesh: TestMesh;
let waypoint: Waypoint;
let client: HboneClient;

beforeAll(async () => {
  mesh = await TestMesh.create();
  await mesh.writeConfig(
    'mesh.yaml',
    [
      waypointYaml(),
      serviceYaml({
        name: 'app',
        vip: APP.ip,
        port: APP.port,
        pods: [{ name: 'app-0', ip: '127.0.185.11' }],
      }),
    ].join('---\n'),
  );
  const app = http.createServer((req, res) => {
    if (req.url === '/silent') return; // never answers
    if (req.url === '/stall') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first');
      return; // then nothing
    }
    if (req.url === '/trickle') {
      // A chunk every 100 ms for 1.2 s: never idle for long, long past the idle timeout in all.
      res.writeHead(200, { 'content-type': 'text/plain' });
      let n = 0;
      const t = setInterval(() => {
        res.write(`${n}`);
        if (++n === 12) {
          clearInterval(t);
          res.end();
        }
      }, 100);
      return;
    }
    res.end('ok');
  });
  const wss = new ws.WebSocketServer({ noServer: true });
  app.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) =>
    wss.handleUpgrade(req, socket, head, (sock) => {
      sock.on('error', () => {});
      sock.on('message', (d) => sock.send(d.toString()));
    }),
  );
  mesh.onClose(() => wss.close());
  await mesh.pod('127.0.185.11', APP.port, app, id('shop', 'app'));
  const ip = '127.0.185.100';
  waypoint = await mesh.startWaypoint({
    ip: ip,
    streamIdleTimeoutMs: IDLE_MS,
  });
  client = await mesh.hboneClient(id('shop', 'sleep'));
});
afterAll(() => mesh.close());

function pool() {
  return mesh.httpPool(client, waypoint.addresses!.hbone, APP);
}

it('answers 408 `stream timeout` when nothing comes back within the idle timeout', async () => {
  const res = await pool().request({ method: 'GET', path: '/silent' });
  expect(res.statusCode).toBe(408);
  expect(await res.body.text()).toBe('stream timeout');
  expect(res.headers['x-waypoint-reason']).toBe('stream_idle_timeout');
});

it('resets a response that stops moving after its head', async () => {
  const res = await pool().request({ method: 'GET', path: '/stall' });
  expect(res.statusCode).toBe(200);
  await expect(res.body.text()).rejects.toThrow();
});

it('keeps a response that keeps moving, however long it lasts', async () => {
  const res = await pool().request({ method: 'GET', path: '/trickle' });
  expect(await res.body.text()).toBe('01234567891011');
});

it('closes an idle WebSocket and keeps a chatty one', async () => {
  const open = async () => {
    const tunnel = await TestMesh.tunnel(client, waypoint.addresses!.hbone, APP);
    const sock = new ws.WebSocket(`ws://${APP.ip}:${APP.port}/`, undefined, {
      createConnection: () => tunnel,
    });
    sock.on('error', () => {});
    await new Promise<void>((resolve) => sock.once('open', () => resolve()));
    return sock;
  };
  const chatty = await open();
  const idle = await open();
  let idleClosed = false;
  const idleClose = new Promise<void>((resolve) => idle.on('close', () => resolve()));
  void idleClose.then(() => (idleClosed = true));
  let chattyClosed = false;
  chatty.on('close', () => {
    chattyClosed = true;
  });
  // Ping-pong until the idle one is closed: the chatty one is never quiet for longer than a round
  // trip, however slow the machine (a fixed cadence could stretch past the idle timeout under load).
  let echoes = 0;
  chatty.on('message', () => echoes++);
  for (let i = 0; i < 20_000 && !idleClosed && !chattyClosed; i++) {
    chatty.send(`ping ${i}`);
    await until('the echo', () => echoes > i || chattyClosed);
  }
  await idleClose;
  expect(chattyClosed).toBe(false);
  expect(echoes).toBeGreaterThan(0);
  chatty.close();
});
