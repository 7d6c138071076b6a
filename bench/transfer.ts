// One large HTTP/1.1 transfer over one TCP connection (so one tunnel when the connection goes to an
// outbound stand-in): download = GET /blob?bytes=N (the backend streams N bytes), upload = PUT
// /sink with an N-byte body (the backend counts it and answers with the count). Throughput is bytes
// over the time from the first request byte written to the last response byte read.
import net from 'node:net';
import { ResponseParser, requestBytes } from './http1.ts';

export interface TransferOptions {
  readonly host: string;
  readonly port: number;
  readonly direction: 'download' | 'upload';
  readonly bytes: number;
  readonly hostHeader?: string;
  /** Give up after this long (default 120 s). */
  readonly timeoutMs?: number;
}

export interface TransferResult {
  readonly direction: 'download' | 'upload';
  readonly bytes: number;
  readonly seconds: number;
  /** 10^6 bytes per second. */
  readonly mbPerSecond: number;
  readonly status: number;
}

const CHUNK = Buffer.alloc(64 * 1024, 0x61);

export function runTransfer(o: TransferOptions): Promise<TransferResult> {
  const timeoutMs = o.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: o.host, port: o.port, noDelay: true });
    const parser = new ResponseParser();
    let t0 = 0;
    let settled = false;
    const finish = (err: Error | undefined, r?: TransferResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(r!);
    };
    const timer = setTimeout(
      () => finish(new Error(`${o.direction} of ${o.bytes} bytes did not finish within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('error', (err) => finish(err));
    socket.on('close', () => finish(new Error(`connection closed during the ${o.direction}`)));
    socket.on('data', (chunk: Buffer) => {
      let r: ReturnType<ResponseParser['feed']>;
      try {
        r = parser.feed(chunk);
      } catch (err) {
        finish(err as Error);
        return;
      }
      if (!r) return;
      const seconds = (performance.now() - t0) / 1000;
      if (r.status !== 200) {
        finish(new Error(`${o.direction}: status ${r.status}`));
        return;
      }
      if (o.direction === 'download' && r.bodyBytes !== o.bytes) {
        finish(new Error(`download: got ${r.bodyBytes} bytes, expected ${o.bytes}`));
        return;
      }
      finish(undefined, {
        direction: o.direction,
        bytes: o.bytes,
        seconds,
        mbPerSecond: o.bytes / 1e6 / seconds,
        status: r.status,
      });
    });
    socket.once('connect', () => {
      const host = o.hostHeader ?? `${o.host}:${o.port}`;
      t0 = performance.now();
      if (o.direction === 'download') {
        socket.write(requestBytes({ method: 'GET', path: `/blob?bytes=${o.bytes}`, host }));
        return;
      }
      socket.write(
        Buffer.from(
          `PUT /sink HTTP/1.1\r\nhost: ${host}\r\ncontent-type: application/octet-stream\r\ncontent-length: ${o.bytes}\r\n\r\n`,
          'latin1',
        ),
      );
      let left = o.bytes;
      const pump = (): void => {
        while (left > 0 && !settled) {
          const n = Math.min(left, CHUNK.length);
          left -= n;
          if (!socket.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
            socket.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
  });
}
