// HTTP edge cases through the waypoint, on the wire: HTTP/1.0, 100-continue, pipelining, malformed
// and oversized requests, an h2c prior-knowledge client on an `http` port (HTTP/1.1 app behind it),
// and failures either side of the response head: a client that goes away mid-download, a backend
// that resets mid-response, a backend that closes before answering.
import http from 'node:http';
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HboneClient } from '../../src/hbone/client.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const WAYPOINT_IP = '127.0.0.7';
const WEB = { ip: '127.0.34.10', port: 8080 };
const POD_IP = '127.0.44.11';
const CONNECTION_TERMINATION =
  'upstream connect error or disconnect/reset before headers. reset reason: connection termination';

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * Reads HTTP/1.x responses off a raw stream: `count` final responses (1xx are returned too, in
 * order), bodies by content-length or until the connection ends.
 */
class ResponseReader {
  #buf = Buffer.alloc(0);
  #ended = false;
  #waiters: Array<() => void> = [];

  constructor(stream: Duplex) {
    stream.on('data', (c: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, c]);
      this.#wake();
    });
    stream.on('end', () => {
      this.#ended = true;
      this.#wake();
    });
    stream.on('close', () => {
      this.#ended = true;
      this.#wake();
    });
    stream.on('error', () => {});
  }

  get ended(): boolean {
    return this.#ended;
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  async #more(deadline: number): Promise<void> {
    if (this.#ended) throw new Error(`stream ended; unread: ${JSON.stringify(this.#buf.toString('latin1'))}`);
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out; unread: ${JSON.stringify(this.#buf.toString('latin1'))}`);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, left);
      this.#waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  async next(timeoutMs = 5_000): Promise<RawResponse> {
    const deadline = Date.now() + timeoutMs;
    let end = this.#buf.indexOf('\r\n\r\n');
    while (end < 0) {
      await this.#more(deadline);
      end = this.#buf.indexOf('\r\n\r\n');
    }
    const head = this.#buf.subarray(0, end).toString('latin1').split('\r\n');
    this.#buf = this.#buf.subarray(end + 4);
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0]!)?.[1]);
    const headers: Record<string, string> = {};
    for (const line of head.slice(1)) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    if (status < 200 || status === 204 || status === 304) return { status, headers, body: Buffer.alloc(0) };
    if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      while (this.#buf.length < n) await this.#more(deadline);
      const body = this.#buf.subarray(0, n);
      this.#buf = this.#buf.subarray(n);
      return { status, headers, body };
    }
    if (headers['transfer-encoding'] === 'chunked') {
      const parts: Buffer[] = [];
      for (;;) {
        let eol = this.#buf.indexOf('\r\n');
        while (eol < 0) {
          await this.#more(deadline);
          eol = this.#buf.indexOf('\r\n');
        }
        const size = Number.parseInt(this.#buf.subarray(0, eol).toString('latin1'), 16);
        while (this.#buf.length < eol + 2 + size + 2) await this.#more(deadline);
        parts.push(this.#buf.subarray(eol + 2, eol + 2 + size));
        this.#buf = this.#buf.subarray(eol + 2 + size + 2);
        if (size === 0) return { status, headers, body: Buffer.concat(parts) };
      }
    }
    // Close-delimited.
    while (!this.#ended) await this.#more(deadline).catch(() => {});
    const body = this.#buf;
    this.#buf = Buffer.alloc(0);
    return { status, headers, body };
  }

  /** Resolves once the peer has closed the connection. */
  async closed(timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#ended)
      await this.#more(deadline).catch((e: Error) => {
        if (!this.#ended) throw e;
      });
  }
}

describe('HTTP edge cases through the waypoint', () => {
  let mesh: TestMesh;
  let waypoint: Waypoint;
  let client: HboneClient;
  /** How each /big/ID response ended at the backend: 'finished' or 'aborted'. */
  const bigOutcome = new Map<string, Promise<'finished' | 'aborted'>>();
  const backendVersions: string[] = [];

  beforeAll(async () => {
    mesh = await TestMesh.create();
    await mesh.writeConfig(
      'mesh.yaml',
      [
        waypointYaml(),
        serviceYaml({ name: 'web', vip: WEB.ip, port: WEB.port, pods: [{ name: 'web-a', ip: POD_IP }] }),
      ].join('---\n'),
    );
    // Room for heads up to the waypoint's limit (Node's own default, 16 KiB, would answer 431 itself).
    const backend = http.createServer({ maxHeaderSize: 128 * 1024 }, async (req, res) => {
      backendVersions.push(req.httpVersion);
      const url = new URL(req.url ?? '/', 'http://web');
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks);
      const [, route, arg] = url.pathname.split('/');
      switch (route) {
        case 'slow':
          await new Promise((r) => setTimeout(r, Number(arg)));
          break;
        case 'trailers': {
          res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum, x-count' });
          res.write('part one;');
          res.write('part two');
          res.addTrailers({ 'x-checksum': 'abc123', 'x-count': '2' });
          res.end();
          return;
        }
        case 'big': {
          // Streams up to 1 GiB, honouring backpressure, until done or the connection goes away.
          let done: (v: 'finished' | 'aborted') => void = () => {};
          bigOutcome.set(arg!, new Promise((r) => (done = r)));
          res.once('close', () => done(res.writableFinished ? 'finished' : 'aborted'));
          res.writeHead(200, {
            'content-type': 'application/octet-stream',
            'content-length': String(1 << 30),
          });
          const chunk = Buffer.alloc(64 * 1024, 7);
          for (let sent = 0; sent < 1 << 30 && !res.destroyed; sent += chunk.length) {
            if (res.write(chunk)) continue;
            await new Promise<void>((resolve) => {
              const go = (): void => {
                res.off('drain', go).off('close', go);
                resolve();
              };
              res.on('drain', go).on('close', go);
            });
          }
          res.end();
          return;
        }
        case 'reset-mid': {
          // Chunked, so a clean end would look like a complete response: the reset must show.
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.write('the first half, ');
          await new Promise((r) => setTimeout(r, 30));
          req.socket.resetAndDestroy();
          return;
        }
        case 'close-before-headers':
          req.socket.end();
          return;
        case 'reset-before-headers':
          req.socket.resetAndDestroy();
          return;
      }
      const reply = JSON.stringify({
        method: req.method,
        path: req.url,
        version: req.httpVersion,
        bytes: body.length,
        body: body.toString(),
        expect: req.headers.expect ?? null,
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(reply) });
      res.end(reply);
    });
    await mesh.pod(POD_IP, WEB.port, backend, id('shop', 'web'));
    waypoint = await mesh.startWaypoint({
      ip: WAYPOINT_IP,
    });
    client = await mesh.hboneClient(id('shop', 'curl'));
  });
  afterAll(() => mesh.close());

  function tunnel(): Promise<ClientHttp2Stream> {
    return TestMesh.tunnel(client, waypoint.addresses!.hbone, WEB);
  }

  async function h2c(): Promise<ClientHttp2Session> {
    const t = await tunnel();
    const session = http2.connect(`http://${WEB.ip}:${WEB.port}`, { createConnection: () => t as never });
    session.on('error', () => {});
    mesh.onClose(() => session.destroy());
    return session;
  }

  function h2request(
    session: ClientHttp2Session,
    headers: http2.OutgoingHttpHeaders,
    body?: string,
  ): Promise<{ headers: IncomingHttpHeaders; body: string; trailers: IncomingHttpHeaders | undefined }> {
    return new Promise((resolve, reject) => {
      const s = session.request(headers, { endStream: body === undefined });
      let res: IncomingHttpHeaders = {};
      let trailers: IncomingHttpHeaders | undefined;
      let data = '';
      s.on('response', (h) => (res = h));
      s.on('trailers', (t) => (trailers = t));
      s.setEncoding('utf8');
      s.on('data', (d: string) => (data += d));
      s.on('end', () => resolve({ headers: res, body: data, trailers }));
      s.on('error', reject);
      if (body !== undefined) s.end(body);
    });
  }

  it('accepts an HTTP/1.0 request, speaks HTTP/1.1 upstream and closes afterwards', async () => {
    const t = await tunnel();
    const reader = new ResponseReader(t);
    t.write('GET /v10 HTTP/1.0\r\nHost: web.shop\r\n\r\n');
    const res = await reader.next();
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString())).toMatchObject({ method: 'GET', path: '/v10', version: '1.1' });
    // No keep-alive was asked for: the waypoint ends the connection after the response.
    await reader.closed();
  });

  it('answers 100 Continue before the body is sent, then the final response', async () => {
    const t = await tunnel();
    const reader = new ResponseReader(t);
    t.write('POST /upload HTTP/1.1\r\nHost: web.shop\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n');
    const interim = await reader.next(3_000);
    expect(interim.status).toBe(100);
    t.write('hello world');
    const res = await reader.next();
    expect(res.status).toBe(200);
    // The body arrived whole; the expectation was met here, not passed on.
    expect(JSON.parse(res.body.toString())).toMatchObject({ bytes: 11, body: 'hello world', expect: null });
    t.destroy();
  });

  it('answers pipelined requests in order on one connection', async () => {
    const t = await tunnel();
    const reader = new ResponseReader(t);
    // The first is the slowest: its answer must still come first.
    t.write(
      'GET /slow/150?n=1 HTTP/1.1\r\nHost: web\r\n\r\n' +
        'GET /slow/0?n=2 HTTP/1.1\r\nHost: web\r\n\r\n' +
        'POST /slow/40?n=3 HTTP/1.1\r\nHost: web\r\nContent-Length: 3\r\n\r\nabc' +
        'GET /slow/0?n=4 HTTP/1.1\r\nHost: web\r\n\r\n',
    );
    const paths: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await reader.next();
      expect(res.status).toBe(200);
      paths.push((JSON.parse(res.body.toString()) as { path: string }).path);
    }
    expect(paths).toEqual(['/slow/150?n=1', '/slow/0?n=2', '/slow/40?n=3', '/slow/0?n=4']);
    t.destroy();
  });

  it('answers a malformed request line with 400 downstream_protocol_error and closes', async () => {
    for (const line of [
      'GET /a b c HTTP/1.1\r\n',
      'GET / HTTP/1.1 trailing\r\n',
      'G\u0001T / HTTP/1.1\r\n',
    ]) {
      const t = await tunnel();
      const reader = new ResponseReader(t);
      t.write(`${line}Host: web\r\n\r\n`);
      const res = await reader.next();
      expect(res.status, JSON.stringify(line)).toBe(400);
      expect(res.headers['x-waypoint-reason']).toBe('downstream_protocol_error');
      await reader.closed();
    }
  });

  /** A GET whose whole head is `total` bytes (an x-big header fills it up). */
  const headOf = (total: number): string => {
    const frame = (n: number): string => `GET / HTTP/1.1\r\nHost: web\r\nx-big: ${'a'.repeat(n)}\r\n\r\n`;
    return frame(total - frame(0).length);
  };
  /** A GET with one header value of `n` bytes: its head is over a limit of n bytes however it is counted. */
  const headWithValue = (n: number): string =>
    `GET / HTTP/1.1\r\nHost: web\r\nx-big: ${'a'.repeat(n)}\r\n\r\n`;

  async function send(hbone: { ip: string; port: number }, request: string): Promise<RawResponse> {
    const t = await TestMesh.tunnel(client, hbone, WEB);
    const reader = new ResponseReader(t);
    t.write(request);
    const res = await reader.next();
    t.destroy();
    return res;
  }

  it('serves a head just under 60 KiB and answers one just over with 431', async () => {
    const under = await send(waypoint.addresses!.hbone, headOf(60 * 1024 - 1));
    expect(under.status).toBe(200);
    expect(under.headers['x-waypoint-reason']).toBeUndefined();

    const t = await tunnel();
    const reader = new ResponseReader(t);
    t.write(headWithValue(60 * 1024));
    const res = await reader.next();
    expect(res.status).toBe(431);
    expect(res.headers['x-waypoint-reason']).toBe('downstream_headers_too_large');
    await reader.closed();
  });

  it('holds a configured limit (--max-request-headers-kb) on both sides', async () => {
    const small = await mesh.startWaypoint({ ip: WAYPOINT_IP, maxRequestHeadersBytes: 4096 });
    const hbone = small.addresses!.hbone;
    expect((await send(hbone, headOf(4096 - 1))).status).toBe(200);
    const over = await send(hbone, headWithValue(4096));
    expect(over.status).toBe(431);
    expect(over.headers['x-waypoint-reason']).toBe('downstream_headers_too_large');
    // The default waypoint serves that head: the limit is the configured one, not a fixed one.
    expect((await send(waypoint.addresses!.hbone, headWithValue(4096))).status).toBe(200);
  });

  it('serves an h2c prior-knowledge client on an http port, in front of an HTTP/1.1 app', async () => {
    const session = await h2c();
    const get = await h2request(session, { ':method': 'GET', ':path': '/h2?x=1' });
    expect(get.headers[':status']).toBe(200);
    // The app speaks HTTP/1.1 only; an `http` port's upstream is HTTP/1.1 whatever the client spoke.
    expect(JSON.parse(get.body)).toMatchObject({ method: 'GET', path: '/h2?x=1', version: '1.1' });
    const post = await h2request(session, { ':method': 'POST', ':path': '/h2' }, 'payload');
    expect(JSON.parse(post.body)).toMatchObject({ bytes: 7, body: 'payload' });
    // Several streams at once on the one connection.
    const many = await Promise.all(
      Array.from({ length: 20 }, (_, i) => h2request(session, { ':method': 'GET', ':path': `/m/${i}` })),
    );
    expect(many.map((r) => (JSON.parse(r.body) as { path: string }).path)).toEqual(
      Array.from({ length: 20 }, (_, i) => `/m/${i}`),
    );
  });

  it('passes response trailers on to an h2c client', async () => {
    const session = await h2c();
    const res = await h2request(session, { ':method': 'GET', ':path': '/trailers', te: 'trailers' });
    expect(res.headers[':status']).toBe(200);
    expect(res.body).toBe('part one;part two');
    expect(res.trailers).toMatchObject({ 'x-checksum': 'abc123', 'x-count': '2' });
  });

  it('passes response trailers on to an HTTP/1.1 client that accepts them', async () => {
    const t = await tunnel();
    let raw = '';
    t.setEncoding('latin1');
    t.on('data', (d: string) => (raw += d));
    t.write('GET /trailers HTTP/1.1\r\nHost: web\r\nTE: trailers\r\n\r\n');
    for (let i = 0; i < 250 && !raw.endsWith('\r\n\r\n'); i++) await new Promise((r) => setTimeout(r, 20));
    expect(raw).toMatch(/\r\n0\r\nx-checksum: abc123\r\nx-count: 2\r\n\r\n$/);
    t.destroy();
  });

  it('aborts the upstream response when an HTTP/1.1 client goes away mid-download', async () => {
    const t = await tunnel();
    let received = 0;
    const enough = new Promise<void>((resolve) =>
      t.on('data', (c: Buffer) => {
        received += c.length;
        if (received > 4 * 1024 * 1024) resolve();
      }),
    );
    t.write('GET /big/h1 HTTP/1.1\r\nHost: web\r\n\r\n');
    await enough;
    t.destroy();
    for (let i = 0; i < 100 && !bigOutcome.has('h1'); i++) await new Promise((r) => setTimeout(r, 10));
    expect(await bigOutcome.get('h1')).toBe('aborted');
  });

  it('aborts the upstream response when an h2c client resets its stream mid-download', async () => {
    const session = await h2c();
    const s = session.request({ ':method': 'GET', ':path': '/big/h2' });
    s.on('error', () => {});
    let received = 0;
    await new Promise<void>((resolve) =>
      s.on('data', (c: Buffer) => {
        received += c.length;
        if (received > 4 * 1024 * 1024) resolve();
      }),
    );
    s.close(http2.constants.NGHTTP2_CANCEL);
    expect(await bigOutcome.get('h2')).toBe('aborted');
    // The connection itself is fine: the next request on it works.
    const next = await h2request(session, { ':method': 'GET', ':path': '/after-cancel' });
    expect(next.headers[':status']).toBe(200);
  });

  it('resets the client when the backend resets mid-response (HTTP/1.1: no clean end)', async () => {
    const t = await tunnel();
    const reader = new ResponseReader(t);
    let raw = '';
    t.on('data', (d: Buffer) => (raw += d.toString('latin1')));
    t.write('GET /reset-mid HTTP/1.1\r\nHost: web\r\n\r\n');
    // The chunked body never completes; the connection drops instead of ending with 0\r\n\r\n.
    const err = await reader.next().then(
      (r) => new Error(`got a complete response: ${r.status} ${r.body.toString()}`),
      (e: Error) => e,
    );
    expect(err.message).toMatch(/^stream ended/);
    expect(raw).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\n10\r\nthe first half, \r\n$/);
  });

  it('resets the client when the backend resets mid-response (h2c: RST_STREAM, not END_STREAM)', async () => {
    const session = await h2c();
    const s = session.request({ ':method': 'GET', ':path': '/reset-mid' });
    let data = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (data += d));
    const outcome = await new Promise<string>((resolve) => {
      s.on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code}`));
      s.on('close', () => setImmediate(() => resolve(`close rst=${s.rstCode}`)));
    });
    expect(outcome).toMatch(/^error ERR_HTTP2_STREAM_ERROR/);
    expect(s.rstCode).not.toBe(http2.constants.NGHTTP2_NO_ERROR);
    expect(data).toBe('the first half, ');
  });

  it("answers 503 'connection termination' when the backend closes before the response head", async () => {
    for (const path of ['/close-before-headers', '/reset-before-headers']) {
      const t = await tunnel();
      const reader = new ResponseReader(t);
      t.write(`GET ${path} HTTP/1.1\r\nHost: web\r\n\r\n`);
      const res = await reader.next();
      expect(res.status, path).toBe(503);
      expect(res.headers['x-waypoint-reason'], path).toBe('upstream_connection_termination');
      expect(res.body.toString(), path).toBe(CONNECTION_TERMINATION);
      t.destroy();
    }
    // The same, seen by an h2c client.
    const session = await h2c();
    const res = await h2request(session, { ':method': 'GET', ':path': '/close-before-headers' });
    expect(res.headers[':status']).toBe(503);
    expect(res.body).toBe(CONNECTION_TERMINATION);
  });

  it('kept speaking HTTP/1.1 to the app throughout', () => {
    expect(backendVersions.length).toBeGreaterThan(20);
    expect(new Set(backendVersions)).toEqual(new Set(['1.1']));
  });
});
