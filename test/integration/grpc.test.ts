// Real gRPC through the waypoint: @grpc/grpc-js client dialing a ztunnel stand-in's outbound
// listener (plain TCP, tunnelled as HBONE to the waypoint with :authority = the Service VIP:port),
// @grpc/grpc-js server on a pod IP behind the inbound stand-in. The Service port is `grpc`, so the
// waypoint speaks h2c both ways. Every RPC kind, statuses, metadata and trailers, cancellation,
// and the gRPC-shaped local reply when the Service has no ready endpoint.
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Waypoint } from '../../src/waypoint.ts';
import { id, ROOT, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const WAYPOINT_IP = '127.0.0.4';
const ECHO_VIP = { ip: '127.0.31.10', port: 50051 };
const GONE_VIP = { ip: '127.0.31.20', port: 50051 };
const ECHO_POD = '127.0.41.11';

interface Msg {
  text: string;
  seq: number;
  payload: Buffer;
}
interface StreamRequest {
  count: number;
  size: number;
}
interface Summary {
  count: number;
  bytes: number;
  last: string;
}
type Callback<T> = (err: grpc.ServiceError | null, value?: T) => void;
interface EchoClient extends grpc.Client {
  Unary(req: Partial<Msg>, md: grpc.Metadata, cb: Callback<Msg>): grpc.ClientUnaryCall;
  ServerStream(req: StreamRequest, md?: grpc.Metadata): grpc.ClientReadableStream<Msg>;
  ClientStream(cb: Callback<Summary>): grpc.ClientWritableStream<Partial<Msg>>;
  Chat(md?: grpc.Metadata): grpc.ClientDuplexStream<Partial<Msg>, Msg>;
}

const definition = protoLoader.loadSync(join(ROOT, 'test/fixtures/echo.proto'), {
  keepCase: true,
  longs: Number,
  defaults: true,
});
const proto = grpc.loadPackageDefinition(definition) as unknown as {
  waypoint: { test: { Echo: grpc.ServiceClientConstructor } };
};
const Echo = proto.waypoint.test.Echo;

/** Waits for a writable gRPC stream to drain when write() said so (backpressure on the server). */
function drained(call: { once(e: 'drain', cb: () => void): unknown }): Promise<void> {
  return new Promise((r) => call.once('drain', () => r()));
}

function echoServer(): { server: grpc.Server; cancelled: string[] } {
  const cancelled: string[] = [];
  const server = new grpc.Server();
  server.addService(Echo.service, {
    Unary(call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) {
      const initial = new grpc.Metadata();
      initial.set('x-pod', 'echo-a');
      call.sendMetadata(initial);
      const trailer = new grpc.Metadata();
      trailer.set('x-trailer', 'done');
      trailer.set('x-raw-bin', Buffer.from([0, 1, 2, 255]));
      const text = call.request.text;
      if (text.startsWith('fail:')) {
        trailer.set('x-why', 'asked to');
        cb({ code: Number(text.slice(5)), details: `failing as asked: ${text}`, metadata: trailer });
        return;
      }
      const seen = call.metadata.get('x-client')[0] ?? '';
      cb(null, { ...call.request, text: `${text}|x-client=${String(seen)}` }, trailer);
    },
    async ServerStream(call: grpc.ServerWritableStream<StreamRequest, Msg>) {
      let gone = false;
      call.on('cancelled', () => {
        gone = true;
        cancelled.push('ServerStream');
      });
      const { count, size } = call.request;
      for (let i = 0; i < count && !gone; i++) {
        if (!call.write({ text: `s${i}`, seq: i, payload: Buffer.alloc(size, i & 0xff) }))
          await drained(call);
      }
      if (gone) return;
      const trailer = new grpc.Metadata();
      trailer.set('x-sent', String(count));
      call.end(trailer);
    },
    ClientStream(call: grpc.ServerReadableStream<Msg, Summary>, cb: grpc.sendUnaryData<Summary>) {
      let count = 0;
      let bytes = 0;
      let last = '';
      call.on('data', (m: Msg) => {
        count++;
        bytes += m.payload.length;
        last = m.text;
      });
      call.on('end', () => cb(null, { count, bytes, last }));
    },
    Chat(call: grpc.ServerDuplexStream<Msg, Msg>) {
      call.on('data', (m: Msg) => call.write({ ...m, text: `echo:${m.text}` }));
      call.on('end', () => call.end());
    },
  });
  return { server, cancelled };
}

describe('gRPC through the waypoint', () => {
  let mesh: TestMesh;
  let waypoint: Waypoint;
  let echo: EchoClient;
  let gone: EchoClient;
  let cancelled: string[];

  beforeAll(async () => {
    mesh = await TestMesh.create();
    await mesh.writeConfig(
      'mesh.yaml',
      [
        waypointYaml(),
        serviceYaml({
          name: 'echo',
          vip: ECHO_VIP.ip,
          port: ECHO_VIP.port,
          portName: 'grpc-echo',
          pods: [{ name: 'echo-a', ip: ECHO_POD }],
        }),
        serviceYaml({
          name: 'gone',
          vip: GONE_VIP.ip,
          port: GONE_VIP.port,
          portName: 'api',
          appProtocol: 'grpc',
          pods: [{ name: 'gone-a', ip: '127.0.41.21', ready: false }],
        }),
      ].join('---\n'),
    );
    const built = echoServer();
    cancelled = built.cancelled;
    await new Promise<void>((resolve, reject) =>
      built.server.bindAsync(
        `${ECHO_POD}:${ECHO_VIP.port}`,
        grpc.ServerCredentials.createInsecure(),
        (err) => (err ? reject(err) : resolve()),
      ),
    );
    mesh.onClose(() => built.server.forceShutdown());
    await mesh.standIn(ECHO_POD, id('shop', 'echo'));

    waypoint = await mesh.startWaypoint({
      ip: WAYPOINT_IP,
    });
    const clientFor = async (destination: typeof ECHO_VIP, listenIp: string): Promise<EchoClient> => {
      const local = await mesh.outbound({
        listen: { ip: listenIp, port: 0 },
        waypoint: waypoint.addresses!.hbone,
        destination,
        identity: id('shop', 'frontend'),
      });
      const c = new Echo(`${local.ip}:${local.port}`, grpc.credentials.createInsecure(), {
        'grpc.enable_http_proxy': 0,
      }) as unknown as EchoClient;
      mesh.onClose(() => c.close());
      return c;
    };
    echo = await clientFor(ECHO_VIP, '127.0.51.10');
    gone = await clientFor(GONE_VIP, '127.0.51.20');
  });
  afterAll(() => mesh.close());

  function unary(
    client: EchoClient,
    req: Partial<Msg>,
    md = new grpc.Metadata(),
  ): Promise<{
    err: grpc.ServiceError | null;
    res?: Msg;
    headers?: grpc.Metadata;
    trailers?: grpc.Metadata;
  }> {
    return new Promise((resolve) => {
      let headers: grpc.Metadata | undefined;
      let trailers: grpc.Metadata | undefined;
      let result: { err: grpc.ServiceError | null; res?: Msg } | undefined;
      const done = (): void => {
        if (result && trailers) resolve({ ...result, headers, trailers });
      };
      const call = client.Unary(req, md, (err, res) => {
        result = res === undefined ? { err } : { err, res };
        // On failure the trailers come with the error; on success in the 'status' event.
        if (err) trailers ??= err.metadata;
        done();
      });
      call.on('metadata', (m: grpc.Metadata) => {
        headers = m;
      });
      call.on('status', (s: grpc.StatusObject) => {
        trailers = s.metadata;
        done();
      });
    });
  }

  it('makes unary calls with request metadata, response headers and trailers', async () => {
    for (let i = 0; i < 20; i++) {
      const md = new grpc.Metadata();
      md.set('x-client', `c${i}`);
      const payload = Buffer.alloc(i * 1000, i);
      const { err, res, headers, trailers } = await unary(echo, { text: `hi ${i}`, seq: i, payload }, md);
      expect(err).toBeNull();
      expect(res!.text).toBe(`hi ${i}|x-client=c${i}`);
      expect(res!.seq).toBe(i);
      expect(res!.payload.equals(payload)).toBe(true);
      expect(headers!.get('x-pod')).toEqual(['echo-a']);
      expect(trailers!.get('x-trailer')).toEqual(['done']);
      expect(trailers!.get('x-raw-bin')).toEqual([Buffer.from([0, 1, 2, 255])]);
    }
  });

  it('relays non-OK statuses with their message and trailing metadata', async () => {
    for (const code of [
      grpc.status.NOT_FOUND,
      grpc.status.PERMISSION_DENIED,
      grpc.status.RESOURCE_EXHAUSTED,
      grpc.status.UNAVAILABLE,
      grpc.status.INTERNAL,
    ]) {
      const { err } = await unary(echo, { text: `fail:${code}` });
      expect(err?.code).toBe(code);
      expect(err?.details).toBe(`failing as asked: fail:${code}`);
      expect(err?.metadata.get('x-why')).toEqual(['asked to']);
      expect(err?.metadata.get('x-trailer')).toEqual(['done']);
    }
  });

  it('streams many messages from the server, with trailers at the end', async () => {
    const call = echo.ServerStream({ count: 2000, size: 512 });
    const trailers = new Promise<grpc.Metadata>((r) =>
      call.on('status', (s: grpc.StatusObject) => r(s.metadata)),
    );
    let n = 0;
    for await (const m of call as AsyncIterable<Msg>) {
      expect(m.seq).toBe(n);
      expect(m.payload.length).toBe(512);
      expect(m.payload[511]).toBe(n & 0xff);
      n++;
    }
    expect(n).toBe(2000);
    expect((await trailers).get('x-sent')).toEqual(['2000']);
  });

  it('streams many messages from the client', async () => {
    const summary = await new Promise<Summary>((resolve, reject) => {
      const call = echo.ClientStream((err, res) => (err ? reject(err) : resolve(res!)));
      void (async () => {
        for (let i = 0; i < 2000; i++) {
          if (!call.write({ text: `c${i}`, seq: i, payload: Buffer.alloc(1024, i) })) await drained(call);
        }
        call.end();
      })();
    });
    expect(summary).toEqual({ count: 2000, bytes: 2000 * 1024, last: 'c1999' });
  });

  it('streams both ways at once, in order', async () => {
    const call = echo.Chat();
    const received: Msg[] = [];
    const ended = new Promise<void>((resolve, reject) => {
      call.on('data', (m: Msg) => received.push(m));
      call.on('end', () => resolve());
      call.on('error', reject);
    });
    for (let i = 0; i < 3000; i++) {
      if (!call.write({ text: `b${i}`, seq: i, payload: Buffer.alloc(i % 4096, i) })) await drained(call);
    }
    call.end();
    await ended;
    expect(received.length).toBe(3000);
    received.forEach((m, i) => {
      expect(m.seq).toBe(i);
      expect(m.text).toBe(`echo:b${i}`);
      expect(m.payload.length).toBe(i % 4096);
    });
  });

  it('interleaves concurrent calls on one channel', async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => unary(echo, { text: `p${i}`, seq: i }).then((r) => r.res?.seq)),
    );
    expect(results).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('cancels the server-side call when the client cancels a stream', async () => {
    const before = cancelled.length;
    // Far more than the client reads: the server is held back by flow control until the cancel.
    const call = echo.ServerStream({ count: 1_000_000, size: 1024 });
    const status = new Promise<grpc.StatusObject>((r) => call.on('status', r));
    call.on('error', () => {});
    let n = 0;
    await new Promise<void>((resolve) =>
      call.on('data', () => {
        if (++n === 10) {
          call.cancel();
          resolve();
        }
      }),
    );
    expect((await status).code).toBe(grpc.status.CANCELLED);
    for (let i = 0; i < 200 && cancelled.length === before; i++) await new Promise((r) => setTimeout(r, 10));
    expect(cancelled.length).toBe(before + 1);
  });

  it('answers UNAVAILABLE "no healthy upstream" when the Service has no ready endpoint', async () => {
    const { err } = await unary(gone, { text: 'anyone?' });
    expect(err?.code).toBe(grpc.status.UNAVAILABLE);
    expect(err?.details).toBe('no healthy upstream');
    expect(err?.metadata.get('x-waypoint-reason')).toEqual(['no_healthy_upstream']);
    // Streaming calls get the same answer.
    const call = gone.ServerStream({ count: 1, size: 1 });
    const status = await new Promise<grpc.StatusObject>((r) => {
      call.on('error', () => {});
      call.on('status', r);
    });
    expect(status.code).toBe(grpc.status.UNAVAILABLE);
    expect(status.details).toBe('no healthy upstream');
  });
});
