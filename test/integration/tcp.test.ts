// Opaque TCP through the waypoint: bytes byte for byte both ways, half-close in each direction,
// server-first protocols on a TCP port, resets passed on, and the sniffing of a port whose
// protocol Istio cannot tell (port name `foo`): HTTP for an HTTP client, TCP for anything else.
import { createHash, randomBytes } from 'node:crypto';
import http2, { type ClientHttp2Stream } from 'node:http2';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HboneClient } from '../../src/hbone/client.ts';
import { acceptTunnel, HboneServer, refuseTunnel } from '../../src/hbone/server.ts';
import { silentLogger } from '../../src/observe/logger.ts';
import { splice } from '../../src/proxy/tcp-proxy.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const WAYPOINT_IP = '127.0.0.5';
const ECHO = { ip: '127.0.32.10', port: 7000 };
const LATE = { ip: '127.0.32.11', port: 7001 };
const BANNER = { ip: '127.0.32.12', port: 2525 };
const FIN_FIRST = { ip: '127.0.32.13', port: 7003 };
const SNIFFED_HTTP = { ip: '127.0.32.14', port: 7004 };
const RESETTER = { ip: '127.0.32.15', port: 7005 };
const SNIFFED_TCP = { ip: '127.0.32.16', port: 7006 };
const NOBODY = { ip: '127.0.32.17', port: 7007 };

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * Everything a stream delivers until it ends; rejects if it is reset instead. Node ends an
 * HTTP/2 stream's readable side before it reports the reset, so the verdict waits a turn.
 */
function readAll(s: Duplex): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let failed: Error | undefined;
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', (e: Error) => {
      failed ??= e;
      reject(e);
    });
    s.once('end', () => setImmediate(() => (failed ? reject(failed) : resolve(Buffer.concat(chunks)))));
    s.once('close', () =>
      setImmediate(() => reject(new Error(`closed without end after ${Buffer.concat(chunks).length} bytes`))),
    );
  });
}

/** Writes buf in chunks, honouring backpressure; ends the stream if asked. */
async function writeAll(s: net.Socket | ClientHttp2Stream, buf: Buffer, end: boolean): Promise<void> {
  for (let off = 0; off < buf.length; off += 64 * 1024) {
    if (!s.write(buf.subarray(off, off + 64 * 1024)))
      await new Promise<void>((r) => s.once('drain', () => r()));
  }
  if (end) s.end();
}

/** A half-open-capable TCP server; its connections are destroyed when the mesh closes. */
function listenTcp(mesh: TestMesh, handler: (socket: net.Socket) => void): net.Server {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    handler(socket);
  });
  mesh.onClose(() => {
    for (const s of sockets) s.destroy();
  });
  return server;
}

/**
 * A ztunnel stand-in that keeps the application connection half-open like ztunnel does. The
 * shared one (src/ztunnel/inbound.ts) dials the app with net.connect's default
 * allowHalfOpen: false, so Node ends the app socket as soon as the server sends its FIN and the
 * client's later bytes are lost before they reach the waypoint's far side.
 */
async function halfOpenPod(mesh: TestMesh, ip: string, port: number, server: net.Server, identity: string) {
  await new Promise<void>((resolve) => server.listen(port, ip, () => resolve()));
  mesh.onClose(() => new Promise<void>((r) => server.close(() => r())));
  const hbone = new HboneServer(
    await mesh.credentials(identity),
    {
      route: (req) => ({
        accept: true,
        serve: (stream) => {
          const app = net.connect({ host: req.authority.ip, port: req.authority.port, allowHalfOpen: true });
          app.on('error', () => {});
          app.once('error', () => refuseTunnel(stream, 'upstream_connect_failure'));
          app.once('connect', () => {
            acceptTunnel(stream);
            void splice(stream, app);
          });
        },
      }),
    },
    silentLogger,
  );
  await hbone.listen(ip, 15008);
  mesh.onClose(() => hbone.close());
}

describe('TCP through the waypoint', () => {
  let mesh: TestMesh;
  let waypoint: Waypoint;
  let client: HboneClient;
  /** What the FIN-first server received after it had ended its own side. */
  const finFirstReceived: Array<Promise<Buffer>> = [];
  /** How each connection to the resetter ended, server side. */
  const resetterClosed: Array<Promise<string>> = [];

  beforeAll(async () => {
    mesh = await TestMesh.create();
    await mesh.writeConfig(
      'mesh.yaml',
      [
        waypointYaml(),
        serviceYaml({ name: 'echo', ...vip(ECHO), portName: 'tcp-echo', pods: [pod('echo', 10)] }),
        serviceYaml({
          name: 'late',
          ...vip(LATE),
          portName: 'stuff',
          appProtocol: 'tcp',
          pods: [pod('late', 11)],
        }),
        serviceYaml({ name: 'smtp', ...vip(BANNER), portName: 'tcp-smtp', pods: [pod('smtp', 12)] }),
        serviceYaml({ name: 'finfirst', ...vip(FIN_FIRST), portName: 'tcp', pods: [pod('finfirst', 13)] }),
        serviceYaml({ name: 'mystery', ...vip(SNIFFED_HTTP), portName: 'foo', pods: [pod('mystery', 14)] }),
        serviceYaml({ name: 'resetter', ...vip(RESETTER), portName: 'tcp-r', pods: [pod('resetter', 15)] }),
        serviceYaml({ name: 'enigma', ...vip(SNIFFED_TCP), portName: 'foo', pods: [pod('enigma', 16)] }),
        serviceYaml({ name: 'nobody', ...vip(NOBODY), portName: 'tcp', pods: [] }),
      ].join('---\n'),
    );

    // Echo: returns every byte; ends when the client ends.
    await mesh.pod(
      '127.0.42.10',
      ECHO.port,
      listenTcp(mesh, (s) => s.pipe(s)),
      id('shop', 'echo'),
    );

    // Late reply: reads to the client's FIN, then answers in three pieces and ends.
    const late = listenTcp(mesh, (s) => {
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('end', async () => {
        const got = Buffer.concat(chunks);
        for (const part of [`bytes=${got.length}\n`, `sha256=${sha(got)}\n`, 'bye\n']) {
          s.write(part);
          await new Promise((r) => setTimeout(r, 20));
        }
        s.end();
      });
    });
    await mesh.pod('127.0.42.11', LATE.port, late, id('shop', 'late'));

    // Server-first: greets before the client says anything, then echoes lines upper-cased.
    const smtp = listenTcp(mesh, (s) => {
      s.write('220 smtp.example ESMTP ready\r\n');
      s.on('data', (c: Buffer) => s.write(`250 ${c.toString().trim().toUpperCase()}\r\n`));
      s.on('end', () => s.end('221 bye\r\n'));
    });
    await mesh.pod('127.0.42.12', BANNER.port, smtp, id('shop', 'smtp'));

    // FIN first: says hello and ends its side at once, then keeps reading until the client ends.
    const finFirst = listenTcp(mesh, (s) => {
      s.end('hello and goodbye\n');
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      finFirstReceived.push(new Promise((r) => s.on('end', () => r(Buffer.concat(chunks)))));
    });
    await halfOpenPod(mesh, '127.0.42.13', FIN_FIRST.port, finFirst, id('shop', 'finfirst'));

    // Unknown protocol, two backends: an HTTP echo and a byte echo.
    await mesh.pod('127.0.42.14', SNIFFED_HTTP.port, TestMesh.echoServer('mystery-a'), id('shop', 'mystery'));
    await mesh.pod(
      '127.0.42.16',
      SNIFFED_TCP.port,
      listenTcp(mesh, (s) => s.pipe(s)),
      id('shop', 'enigma'),
    );

    // Resetter: echoes; a line starting with "reset" answers with a TCP RST. After the client's
    // FIN it keeps writing until a write fails, and reports how its connection ended.
    const resetter = listenTcp(mesh, (s) => {
      resetterClosed.push(
        new Promise((resolve) => {
          s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
          s.once('end', async () => {
            for (let i = 0; i < 100 && !s.destroyed; i++) {
              s.write('still there?\n');
              await new Promise((r) => setTimeout(r, 20));
            }
            if (!s.destroyed) resolve('peer kept reading after its FIN');
          });
        }),
      );
      s.on('data', (c: Buffer) => {
        if (c.toString().startsWith('reset')) s.resetAndDestroy();
        else s.write(c);
      });
    });
    await mesh.pod('127.0.42.15', RESETTER.port, resetter, id('shop', 'resetter'));

    waypoint = await mesh.startWaypoint({
      ip: WAYPOINT_IP,
    });
    client = await mesh.hboneClient(id('shop', 'client'));
  });
  afterAll(() => mesh.close());

  function vip(hp: { ip: string; port: number }): { vip: string; port: number } {
    return { vip: hp.ip, port: hp.port };
  }
  function pod(name: string, n: number): { name: string; ip: string } {
    return { name: `${name}-a`, ip: `127.0.42.${n}` };
  }
  function tunnel(dest: { ip: string; port: number }): Promise<ClientHttp2Stream> {
    return TestMesh.tunnel(client, waypoint.addresses!.hbone, dest);
  }

  it('carries 4 MiB of random bytes byte for byte both ways', async () => {
    const data = randomBytes(4 * 1024 * 1024);
    const t = await tunnel(ECHO);
    const back = readAll(t);
    await writeAll(t, data, true);
    const got = await back;
    expect(got.length).toBe(data.length);
    expect(sha(got)).toBe(sha(data));
  });

  it('runs several connections at once without mixing their bytes', async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const data = randomBytes(256 * 1024 + Math.floor(Math.random() * 1024));
        const t = await tunnel(ECHO);
        const back = readAll(t);
        await writeAll(t, data, true);
        return sha(await back) === sha(data);
      }),
    );
    expect(results).toEqual(Array(8).fill(true));
  });

  it("keeps the server's direction open after the client half-closes", async () => {
    const data = randomBytes(1024 * 1024 + 17);
    const t = await tunnel(LATE);
    const reply = readAll(t);
    await writeAll(t, data, true);
    // The server answers only after it saw our FIN, in pieces, and then ends.
    expect((await reply).toString()).toBe(`bytes=${data.length}\nsha256=${sha(data)}\nbye\n`);
  });

  it("keeps the client's direction open after the server half-closes", async () => {
    const before = finFirstReceived.length;
    const t = await tunnel(FIN_FIRST);
    const reply = readAll(t);
    // The server's FIN arrives first, and the tunnel still takes our bytes afterwards.
    expect((await reply).toString()).toBe('hello and goodbye\n');
    const data = randomBytes(512 * 1024);
    await writeAll(t, data, true);
    for (let i = 0; i < 100 && finFirstReceived.length === before; i++)
      await new Promise((r) => setTimeout(r, 10));
    const received = await finFirstReceived[before]!;
    expect(sha(received)).toBe(sha(data));
  });

  it('lets a server-first protocol speak first on a TCP port (no sniffing delay)', async () => {
    const t = await tunnel(BANNER);
    const lines: string[] = [];
    let buffered = '';
    const nextLine = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line; got ${JSON.stringify(buffered)}`)), 3_000);
        const check = (): void => {
          const i = buffered.indexOf('\r\n');
          if (i < 0) return;
          const line = buffered.slice(0, i);
          buffered = buffered.slice(i + 2);
          t.off('data', onData);
          clearTimeout(timer);
          lines.push(line);
          resolve(line);
        };
        const onData = (c: Buffer): void => {
          buffered += c.toString();
          check();
        };
        t.on('data', onData);
        check();
      });
    // Sniffing would hold the connection until its 5 s timeout; a TCP port must not wait at all.
    expect(await nextLine()).toBe('220 smtp.example ESMTP ready');
    t.write('ehlo client.example\r\n');
    expect(await nextLine()).toBe('250 EHLO CLIENT.EXAMPLE');
    const rest = readAll(t);
    t.end();
    expect((await rest).toString()).toBe('221 bye\r\n');
  });

  it('passes a reset from the server on to the client as a reset, not a clean end', async () => {
    const t = await tunnel(RESETTER);
    const echoed = new Promise<string>((r) => t.once('data', (c: Buffer) => r(c.toString())));
    t.write('hello\n');
    expect(await echoed).toBe('hello\n');
    const outcome = readAll(t).then(
      () => 'ended',
      () => 'reset',
    );
    t.write('reset\n');
    expect(await outcome).toBe('reset');
    // A reset, not an orderly END_STREAM.
    expect(t.rstCode).not.toBe(0);
  });

  it('passes a client reset on to the server', async () => {
    const before = resetterClosed.length;
    const t = await tunnel(RESETTER);
    const echoed = new Promise<string>((r) => t.once('data', (c: Buffer) => r(c.toString())));
    t.write('ping\n');
    expect(await echoed).toBe('ping\n');
    t.destroy();
    // ztunnel turns a reset tunnel into a FIN to the app; what tells it apart from a half-close is
    // that the connection is gone: the server's next writes fail instead of reaching anyone.
    const how = await resetterClosed[before]!;
    expect(['ECONNRESET', 'EPIPE']).toContain(how);
  });

  it('sniffs an HTTP/1.1 client on a port of unknown protocol and proxies it as HTTP', async () => {
    const pool = mesh.httpPool(client, waypoint.addresses!.hbone, SNIFFED_HTTP, { connections: 1 });
    for (let i = 0; i < 3; i++) {
      const res = await pool.request({ method: 'POST', path: `/sniffed/${i}`, body: 'abc' });
      expect(res.statusCode).toBe(200);
      const body = (await res.body.json()) as {
        pod: string;
        path: string;
        bytes: number;
        headers: Record<string, string>;
      };
      expect(body).toMatchObject({ pod: 'mystery-a', path: `/sniffed/${i}`, bytes: 3 });
      // Only an HTTP proxy adds a request id: the waypoint parsed the request.
      expect(body.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it('sniffs opaque bytes on a port of unknown protocol as TCP', async () => {
    const data = Buffer.concat([Buffer.from([0, 1, 2, 3, 0xff]), randomBytes(300 * 1024)]);
    const t = await tunnel(SNIFFED_TCP);
    const back = readAll(t);
    await writeAll(t, data, true);
    expect(sha(await back)).toBe(sha(data));
  });

  it('treats a text protocol that is not HTTP as TCP on a port of unknown protocol', async () => {
    // Redis inline commands look like "VERB args\r\n"; only a real HTTP request line is HTTP.
    for (const line of ['SET greeting hello\r\n', 'HELO client.example\r\n', 'GET key\r\n']) {
      const t = await tunnel(SNIFFED_TCP);
      const back = readAll(t);
      t.end(line);
      expect((await back).toString()).toBe(line);
    }
  });

  it('passes on bytes and the FIN of a client that ends before sniffing could decide', async () => {
    // "GE" could still become "GET / HTTP/1.1"; the FIN settles it as TCP, bytes and all.
    for (const sent of ['GE', '']) {
      const t = await tunnel(SNIFFED_TCP);
      const back = readAll(t);
      t.end(sent);
      expect((await back).toString()).toBe(sent);
    }
  });

  it("answers a tunnel to a Service without endpoints with no_healthy_upstream's reply", async () => {
    // Raw HTTP/2 CONNECT, as ztunnel sends it, to read the reply's headers and body.
    const tls = (await mesh.credentials(id('shop', 'sleep'))).tlsOptions();
    const { hbone } = waypoint.addresses!;
    const session = http2.connect(`https://${hbone.ip}:${hbone.port}`, {
      ...tls,
      ALPNProtocols: ['h2'],
      servername: '',
      checkServerIdentity: () => undefined,
    });
    session.on('error', () => {});
    mesh.onClose(() => session.destroy());
    const req = session.request({ ':method': 'CONNECT', ':authority': `${NOBODY.ip}:${NOBODY.port}` });
    const headers = await new Promise<http2.IncomingHttpHeaders>((resolve) => req.once('response', resolve));
    let body = '';
    for await (const c of req) body += String(c);
    expect(headers[':status']).toBe(503);
    expect(headers['x-waypoint-reason']).toBe('no_healthy_upstream');
    expect(body).toBe('no healthy upstream');
  });
});
