// @grpc/grpc-js as the other interop peer: the same /interop.Echo/Unary service as
// test/helpers/grpc_peer.py (raw bytes, no codegen), and a client whose results have the same shape.
import * as grpc from '@grpc/grpc-js';
import type { HostPort } from '../../src/hbone/authority.ts';
import { formatAuthority } from '../../src/hbone/authority.ts';
import type { GrpcioResult } from './grpcio.ts';

export const UNARY_PATH = '/interop.Echo/Unary';
const raw = (b: Buffer): Buffer => b;

const definition: grpc.ServiceDefinition = {
  Unary: {
    path: UNARY_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: raw,
    requestDeserialize: raw,
    responseSerialize: raw,
    responseDeserialize: raw,
  },
};

/** Calls `hold:REQUEST` wait here until the test releases them (then REQUEST says what to do). */
export interface HoldGate {
  readonly held: Array<() => void>;
}

/** ok:TEXT, meta:TEXT (initial metadata first), fail:CODE (trailers-only), slow:MS:TEXT, hold:REQUEST. */
function unary(
  call: grpc.ServerUnaryCall<Buffer, Buffer>,
  cb: grpc.sendUnaryData<Buffer>,
  gate: HoldGate,
  text = call.request.toString(),
): void {
  if (text.startsWith('hold:')) {
    gate.held.push(() => unary(call, cb, gate, text.slice(5)));
    return;
  }
  const [kind, ...restParts] = text.split(':');
  let rest = restParts.join(':');
  const trailer = new grpc.Metadata();
  trailer.set('x-trailer', 'done');
  if (kind === 'fail') {
    cb({ code: Number(rest), details: `failing as asked: ${text}` });
    return;
  }
  if (kind === 'meta') {
    const initial = new grpc.Metadata();
    initial.set('x-pod', 'grpc-js');
    call.sendMetadata(initial);
  }
  let delay = 0;
  if (kind === 'slow') {
    const i = rest.indexOf(':');
    delay = Number(rest.slice(0, i));
    rest = rest.slice(i + 1);
  }
  setTimeout(() => cb(null, Buffer.from(rest), trailer), delay);
}

/** A grpc-js server of the interop service on ip:port; resolves once bound. */
export async function startGrpcJsServer(
  ip: string,
  port: number,
  gate: HoldGate = { held: [] },
  options: grpc.ServerOptions = {},
): Promise<grpc.Server> {
  const server = new grpc.Server(options);
  server.addService(definition, {
    Unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
      unary(call, cb, gate),
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(formatAuthority(ip, port), grpc.ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    ),
  );
  return server;
}

/** Sends every request at once on one grpc-js channel to target, each with a deadline. */
export async function grpcJsCalls(
  target: HostPort,
  requests: readonly string[],
  timeoutSeconds = 10,
): Promise<GrpcioResult[]> {
  const client = new grpc.Client(formatAuthority(target.ip, target.port), grpc.credentials.createInsecure(), {
    'grpc.enable_http_proxy': 0,
  });
  try {
    return await Promise.all(requests.map((r) => oneCall(client, r, timeoutSeconds)));
  } finally {
    client.close();
  }
}

function oneCall(client: grpc.Client, request: string, timeoutSeconds: number): Promise<GrpcioResult> {
  return new Promise((resolve) => {
    let initial: Record<string, string> = {};
    let reply: string | null = null;
    const call = client.makeUnaryRequest(
      UNARY_PATH,
      raw,
      raw,
      Buffer.from(request),
      new grpc.Metadata(),
      { deadline: Date.now() + timeoutSeconds * 1000 },
      (_err, value) => {
        if (value) reply = value.toString();
      },
    );
    call.on('metadata', (m: grpc.Metadata) => (initial = plain(m)));
    // 'status' comes after the callback, with the trailers on success and failure alike.
    call.on('status', (s: grpc.StatusObject) =>
      resolve({
        code: grpc.status[s.code]!,
        details: s.details,
        reply,
        initial,
        trailing: plain(s.metadata),
      }),
    );
  });
}

function plain(m: grpc.Metadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.getMap())) out[k] = String(v);
  return out;
}
