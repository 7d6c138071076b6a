// A non-Node HTTP/2 client (nghttp from Debian's nghttp2-client, on libnghttp2) sending one unary
// gRPC request with prior knowledge, and the frames it received for that stream, as its -v log
// shows them: so a test can see that trailers arrived, and as how many HEADERS frames.
import { execFile, execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { HostPort } from '../../src/hbone/authority.ts';
import { formatAuthority } from '../../src/hbone/authority.ts';

const NGHTTP = '/usr/bin/nghttp';

/** Why nghttp cannot run here (the skipped test's reason), or undefined. */
export function nghttpMissing(): string | undefined {
  try {
    execFileSync(NGHTTP, ['--version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return `${NGHTTP} not found: install Debian's nghttp2-client (.ci/run does)`;
  }
}

export interface Frame {
  readonly type: string;
  readonly endStream: boolean;
  readonly length: number;
  /** The header fields of a HEADERS frame (its whole block, CONTINUATION included). */
  readonly headers: Record<string, string>;
}

/** A gRPC length-prefixed message. */
export function grpcMessage(text: string): Buffer {
  const body = Buffer.from(text);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(body.length, 1);
  return Buffer.concat([prefix, body]);
}

/** POSTs one gRPC message to target/path with nghttp; resolves with the frames received on its stream. */
export async function nghttpGrpc(
  target: HostPort,
  path: string,
  text: string,
  dir: string,
): Promise<Frame[]> {
  const bodyFile = join(dir, `nghttp-${process.hrtime.bigint()}.bin`);
  await writeFile(bodyFile, grpcMessage(text));
  const url = `http://${formatAuthority(target.ip, target.port)}${path}`;
  const args = ['-nv', '--no-dep', '-t', '10', '-H', 'content-type: application/grpc', '-H', 'te: trailers'];
  const log = await new Promise<string>((resolve, reject) =>
    execFile(NGHTTP, [...args, '-d', bodyFile, url], (err, stdout) =>
      err && !stdout ? reject(err) : resolve(stdout),
    ),
  );
  return parseFrames(log);
}

/** Frames received on the request's stream (the first one nghttp opens). */
function parseFrames(log: string): Frame[] {
  const frames: Frame[] = [];
  let stream: string | undefined;
  // nghttp logs a HEADERS frame's fields before the frame's own line.
  let fields: Record<string, string> = {};
  for (const line of log.split('\n')) {
    const sent = /send HEADERS frame <.*stream_id=(\d+)>/.exec(line);
    if (sent && stream === undefined) stream = sent[1];
    const field = /recv \(stream_id=(\d+)\) (:?[^:]+): (.*)$/.exec(line);
    if (field && field[1] === stream) fields[field[2]!] = field[3]!;
    const recv = /recv (\w+) frame <length=(\d+), flags=0x([0-9a-f]+), stream_id=(\d+)>/.exec(line);
    if (recv && recv[4] === stream) {
      const endStream = (Number.parseInt(recv[3]!, 16) & 1) === 1;
      const headers = recv[1] === 'HEADERS' ? fields : {};
      if (recv[1] === 'HEADERS') fields = {};
      frames.push({ type: recv[1]!, length: Number(recv[2]), endStream, headers });
    }
  }
  return frames;
}
