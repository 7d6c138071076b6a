// An HTTP/2 (h2c) gRPC server written frame by frame on a plain socket, for replies Node's http2
// cannot be made to produce on demand: the whole response (HEADERS, DATA, trailing HEADERS with
// END_STREAM) in ONE socket write, so the proxy reads the trailers in the same chunk as the last DATA.
import net from 'node:net';

const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
const DATA = 0;
const HEADERS = 1;
const SETTINGS = 4;
const END_STREAM = 1;
const END_HEADERS = 4;
const ACK = 1;

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK: `:status: 200` from the static table, the rest literal without indexing (short strings). */
function headerBlock(fields: Record<string, string>, status200: boolean): Buffer {
  const parts: Buffer[] = status200 ? [Buffer.from([0x88])] : [];
  for (const [name, value] of Object.entries(fields)) {
    parts.push(
      Buffer.from([0x00, name.length]),
      Buffer.from(name),
      Buffer.from([value.length]),
      Buffer.from(value),
    );
  }
  return Buffer.concat(parts);
}

/** A gRPC reply with trailers: HEADERS, one DATA with the message, HEADERS(END_STREAM), one write. */
export function oneWriteReply(stream: number, message: string, trailers: Record<string, string>): Buffer {
  const body = Buffer.from(message);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(body.length, 1);
  return Buffer.concat([
    frame(HEADERS, END_HEADERS, stream, headerBlock({ 'content-type': 'application/grpc' }, true)),
    frame(DATA, 0, stream, Buffer.concat([prefix, body])),
    frame(HEADERS, END_HEADERS | END_STREAM, stream, headerBlock(trailers, false)),
  ]);
}

/**
 * Serves every request, once its END_STREAM arrives, with reply(streamId, the request's gRPC
 * message text) written in one socket write. Resolves with the listening server.
 */
export async function frameServer(
  ip: string,
  port: number,
  reply: (stream: number, text: string) => Buffer,
): Promise<net.Server> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    let greeted = false;
    const bodies = new Map<number, Buffer>();
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!greeted) {
        if (buf.length < PREFACE.length) return;
        buf = buf.subarray(PREFACE.length);
        greeted = true;
        socket.write(frame(SETTINGS, 0, 0, Buffer.alloc(0)));
      }
      while (buf.length >= 9) {
        const length = buf.readUIntBE(0, 3);
        if (buf.length < 9 + length) return;
        const [type, flags] = [buf[3]!, buf[4]!];
        const stream = buf.readUInt32BE(5) & 0x7fffffff;
        const payload = buf.subarray(9, 9 + length);
        buf = buf.subarray(9 + length);
        if (type === SETTINGS && !(flags & ACK)) socket.write(frame(SETTINGS, ACK, 0, Buffer.alloc(0)));
        if (type === DATA)
          bodies.set(stream, Buffer.concat([bodies.get(stream) ?? Buffer.alloc(0), payload]));
        if ((type === DATA || type === HEADERS) && flags & END_STREAM) {
          const body = bodies.get(stream) ?? Buffer.alloc(5);
          bodies.delete(stream);
          socket.write(reply(stream, body.subarray(5).toString()));
        }
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, ip, () => resolve());
  });
  return server;
}
