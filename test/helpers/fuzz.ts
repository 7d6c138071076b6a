// A mutation fuzzer for what clients send inside tunnels: HTTP/1.1 requests (byte flips, inserted
// and deleted bytes, duplicated headers, odd request targets, bad Content-Length/Transfer-Encoding
// combinations, truncation and resets mid-head or mid-body) and raw HTTP/2 frames on an h2c
// connection. Seeded, so a failing input can be replayed. Shared by the fuzz test and bench/fuzz.ts.
import type { ClientHttp2Stream } from 'node:http2';
import http2 from 'node:http2';

/** mulberry32: small, fast, deterministic. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const int = (r: Rand, n: number): number => Math.floor(r() * n);

const BASES: readonly string[] = [
  'GET /ok HTTP/1.1\r\nHost: web.shop\r\n\r\n',
  'POST /ok HTTP/1.1\r\nHost: web.shop\r\nContent-Length: 10\r\n\r\n0123456789',
  'POST /ok HTTP/1.1\r\nHost: web.shop\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  'GET http://web.shop/admin HTTP/1.1\r\nHost: web.shop\r\n\r\n',
  'OPTIONS * HTTP/1.1\r\nHost: web.shop\r\nContent-Length: 10\r\n\r\n0123456789',
  'PUT /ok HTTP/1.1\r\nHost: web.shop\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc',
  'GET /ok HTTP/1.0\r\n\r\n',
  'GET /ws HTTP/1.1\r\nHost: web.shop\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
  'DELETE /a/../b/%2e%2e/c?x=1 HTTP/1.1\r\nHost: web.shop\r\nContent-Type: application/grpc\r\n\r\n',
];

const TARGETS = [
  '*',
  'htp://web/x',
  'http://web.shop',
  'http://web.shop/admin',
  'https://u:p@web.shop/',
  'http:///x',
  'web.shop:8080',
  '//double',
  '/%00',
  '/a#frag',
  'ftp://web/x',
  '/' + 'a'.repeat(3000),
  '',
];
const FRAMING = [
  'Content-Length: 10\r\n',
  'Content-Length: -1\r\n',
  'Content-Length: 99999999999999999999\r\n',
  'Content-Length: 1, 2\r\n',
  'Content-Length: abc\r\n',
  'Content-Length: 5\r\nContent-Length: 6\r\n',
  'Transfer-Encoding: chunked\r\n',
  'Transfer-Encoding: chunked\r\nContent-Length: 4\r\n',
  'Transfer-Encoding: gzip, chunked\r\n',
  'Transfer-Encoding: chunked, gzip\r\n',
  'Transfer-Encoding:\tchunked\r\n',
  'Transfer-Encoding: xchunked\r\n',
  'Host: evil.example\r\n',
];
const INSERTS = [
  '\r',
  '\n',
  '\0',
  ' ',
  ':',
  '\r\n',
  '\r\n\r\n',
  '\x7f',
  '\xff',
  'ffffffffffffffff\r\n',
  ';ext=1',
];

/**
 * How the client ends the tunnel: `fin` with its bytes, `end` (FIN) once the waypoint has answered
 * something, `reset` (RST_STREAM) right after its bytes, `open` left to the waypoint.
 */
export type Ending = 'fin' | 'end' | 'reset' | 'open';

function ending(r: Rand): Ending {
  const roll = r();
  return roll < 0.1 ? 'fin' : roll < 0.6 ? 'end' : roll < 0.85 ? 'reset' : 'open';
}

export interface FuzzInput {
  readonly bytes: Buffer;
  readonly ending: Ending;
}

function mutateOnce(r: Rand, s: string): string {
  switch (int(r, 8)) {
    case 0: {
      // byte flip
      const i = int(r, s.length);
      return s.slice(0, i) + String.fromCharCode(s.charCodeAt(i) ^ (1 << int(r, 8))) + s.slice(i + 1);
    }
    case 1: {
      const i = int(r, s.length + 1);
      return s.slice(0, i) + pick(r, INSERTS) + s.slice(i);
    }
    case 2: {
      const i = int(r, s.length);
      return s.slice(0, i) + s.slice(i + 1 + int(r, 8));
    }
    case 3: {
      // duplicate a header line
      const lines = s.split('\r\n');
      const head = lines.indexOf('');
      if (head <= 1) return s;
      const k = 1 + int(r, head - 1);
      lines.splice(k, 0, lines[k]!);
      return lines.join('\r\n');
    }
    case 4: {
      const sp1 = s.indexOf(' ');
      const sp2 = s.indexOf(' ', sp1 + 1);
      if (sp1 < 0 || sp2 < 0) return s;
      return s.slice(0, sp1 + 1) + pick(r, TARGETS) + s.slice(sp2);
    }
    case 5: {
      const eol = s.indexOf('\r\n');
      return eol < 0 ? s : s.slice(0, eol + 2) + pick(r, FRAMING) + s.slice(eol + 2);
    }
    case 6:
      return s.slice(0, int(r, s.length)); // truncation
    default:
      return s + pick(r, BASES); // a pipelined second request
  }
}

/** One mutated HTTP/1.1 input: a base request with one to three mutations, and how it ends. */
export function mutatedRequest(r: Rand): FuzzInput {
  let s = pick(r, BASES);
  const n = 1 + int(r, 3);
  for (let i = 0; i < n; i++) s = mutateOnce(r, s);
  return { bytes: Buffer.from(s, 'latin1'), ending: ending(r) };
}

// ---- HTTP/2 ----

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

/** HPACK literal header fields without indexing, new names (no Huffman): enough to be valid. */
function hpack(headers: ReadonlyArray<readonly [string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of headers) {
    const n = Buffer.from(name);
    const v = Buffer.from(value);
    if (n.length > 126 || v.length > 126) continue;
    parts.push(Buffer.from([0x00, n.length]), n, Buffer.from([v.length]), v);
  }
  return Buffer.concat(parts);
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

function requestFrames(r: Rand, id: number): Buffer[] {
  const path = pick(r, ['/ok', '/ok', 'http://web.shop/admin', '*', '', '/a b']);
  const method = pick(r, ['GET', 'GET', 'POST', 'OPTIONS', 'CONNECT', '']);
  const headers: Array<[string, string]> = [
    [':method', method],
    [':scheme', 'http'],
    [':path', path],
    [':authority', 'web.shop'],
  ];
  if (r() < 0.2) headers.push(['host', 'evil.example']);
  if (r() < 0.2) headers.push(['connection', 'keep-alive']);
  if (r() < 0.2) headers.push(['content-length', pick(r, ['3', '-1', 'x', '100'])]);
  if (r() < 0.2) headers.push(['te', 'trailers']);
  const block = hpack(headers);
  const withBody = method === 'POST' || r() < 0.3;
  const frames: Buffer[] = [];
  if (r() < 0.2) {
    const cut = int(r, block.length);
    frames.push(frame(0x1, 0, id, block.subarray(0, cut)), frame(0x9, 0x4, id, block.subarray(cut)));
  } else {
    frames.push(frame(0x1, 0x4 | (withBody ? 0 : 0x1), id, block));
  }
  if (withBody) frames.push(frame(0x0, r() < 0.8 ? 0x1 : 0, id, Buffer.from('abc')));
  return frames;
}

function randomFrame(r: Rand, id: number): Buffer {
  const type = pick(r, [0x0, 0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8, 0x9, 0xa, 0xff]);
  const len = pick(r, [0, 1, 4, 5, 8, 9, 20]);
  const payload = Buffer.alloc(len);
  for (let i = 0; i < len; i++) payload[i] = int(r, 256);
  return frame(type, int(r, 256), pick(r, [0, id, id + 1, 0x7fffffff]), payload);
}

/** An h2c connection's worth of frames, a few requests among them, then mutated byte by byte. */
export function mutatedH2(r: Rand): FuzzInput {
  const frames: Buffer[] = [PREFACE, frame(0x4, 0, 0, Buffer.alloc(0))];
  const n = 1 + int(r, 4);
  for (let i = 0; i < n; i++) {
    const id = 1 + 2 * i;
    if (r() < 0.7) frames.push(...requestFrames(r, id));
    else frames.push(randomFrame(r, id));
  }
  const bytes = Buffer.concat(frames);
  const flips = int(r, 3);
  for (let i = 0; i < flips; i++) {
    const at = PREFACE.length + int(r, bytes.length - PREFACE.length);
    bytes[at] = bytes[at]! ^ (1 << int(r, 8));
  }
  const cut = r() < 0.2 ? PREFACE.length + int(r, bytes.length - PREFACE.length) : bytes.length;
  return { bytes: bytes.subarray(0, cut), ending: ending(r) };
}

/**
 * Writes one input into a fresh tunnel and resolves once the tunnel is closed: by the waypoint,
 * by the ending, or after `lingerMs` (then it is reset: waiting longer is the waypoint's
 * timeouts' business, not the fuzzer's).
 */
export function sendInput(tunnel: ClientHttp2Stream, input: FuzzInput, lingerMs: number): Promise<void> {
  return new Promise((resolve) => {
    tunnel.on('error', () => {});
    if (input.ending === 'end') tunnel.once('data', () => tunnel.end());
    tunnel.resume();
    const timer = setTimeout(() => tunnel.close(http2.constants.NGHTTP2_CANCEL), lingerMs);
    tunnel.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    if (input.ending === 'reset') {
      tunnel.write(input.bytes, () => tunnel.close(http2.constants.NGHTTP2_CANCEL));
    } else if (input.ending === 'fin') {
      tunnel.end(input.bytes);
    } else {
      tunnel.write(input.bytes);
    }
  });
}

export interface FuzzOptions {
  readonly seed: number;
  /** Mutated HTTP/1.1 requests in all. */
  readonly http1: number;
  /** Mutated h2c connections in all. */
  readonly http2: number;
  /** HTTP/1.1 requests written back to back in one tunnel. */
  readonly perTunnel: number;
  /** Tunnels in flight at once (one batch); the check runs after each batch. */
  readonly batch: number;
  readonly lingerMs: number;
  readonly open: () => Promise<ClientHttp2Stream>;
  /** Asserts the waypoint is alive and serving; throws otherwise. */
  readonly check: (done: FuzzCounts) => Promise<void>;
}

export interface FuzzCounts {
  http1: number;
  http2: number;
  tunnels: number;
  batches: number;
}

/** Runs the HTTP/1.1 inputs, then the HTTP/2 ones, in batches of tunnels, checking after each. */
export async function runFuzz(o: FuzzOptions): Promise<FuzzCounts> {
  const r = rng(o.seed);
  const done: FuzzCounts = { http1: 0, http2: 0, tunnels: 0, batches: 0 };
  const next = (): FuzzInput | undefined => {
    if (done.http1 < o.http1) {
      const parts: FuzzInput[] = [];
      while (parts.length < o.perTunnel && done.http1 < o.http1) {
        parts.push(mutatedRequest(r));
        done.http1++;
      }
      return { bytes: Buffer.concat(parts.map((p) => p.bytes)), ending: parts.at(-1)!.ending };
    }
    if (done.http2 < o.http2) {
      done.http2++;
      return mutatedH2(r);
    }
    return undefined;
  };
  for (;;) {
    const inputs: FuzzInput[] = [];
    for (let i = 0; i < o.batch; i++) {
      const input = next();
      if (input) inputs.push(input);
    }
    if (inputs.length === 0) return done;
    await Promise.all(inputs.map(async (input) => sendInput(await o.open(), input, o.lingerMs)));
    done.tunnels += inputs.length;
    done.batches++;
    await o.check(done);
  }
}

/** A legitimate GET through a fresh tunnel; resolves with its status (NaN: no answer). */
export async function legitimateStatus(open: () => Promise<ClientHttp2Stream>): Promise<number> {
  const t = await open();
  t.on('error', () => {});
  // No FIN with the request: the waypoint answers and closes (Connection: close).
  t.write('GET /ok HTTP/1.1\r\nHost: web.shop\r\nConnection: close\r\n\r\n');
  let got = '';
  for await (const c of t) got += (c as Buffer).toString('latin1');
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(got)?.[1]);
}
