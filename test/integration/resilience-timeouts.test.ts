// Timeouts through a real waypoint (l7-semantics.md §4.6, §5.1): HTTPRoute timeouts.request and
// backendRequest, VirtualService timeout and perTryTimeout, and no timeout by default. Durations
// are asserted with a tight lower bound and a generous upper bound only (never flaky under load).
import http from 'node:http';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Waypoint } from '../../src/waypoint.ts';
import {
  accessLogCapture,
  ControllableBackend,
  flagsOf,
  requester,
} from '../helpers/controllable-backend.ts';
import { id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';
import { until } from '../helpers/until.ts';

const WAYPOINT_IP = '127.0.180.100';
const ROUTED = '127.0.180.1';
const VS = '127.0.180.2';
const PLAIN = '127.0.180.3';
const GRPC_VIP = { ip: '127.0.180.4', port: 50051 };
const GRPC_POD = '127.0.180.14';
const WS = '127.0.180.5';

// `ws` ships no types: the little used here.
interface WsSocket {
  send(data: string): void;
  close(): void;
  on(event: 'error', cb: (err: Error) => void): this;
  once(event: string, cb: (...args: never[]) => void): this;
}
const ws = createRequire(import.meta.url)('ws') as {
  WebSocket: new (url: string, protocols: undefined, opts: { createConnection: () => Duplex }) => WsSocket;
  WebSocketServer: new (opts: {
    noServer: true;
  }) => {
    handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, cb: (s: WsSocket) => void): void;
    close(): void;
  };
};

/** A gRPC method without a proto: raw bytes both ways. */
const SLOW: grpc.MethodDefinition<Buffer, Buffer> = {
  path: '/waypoint.test.Slow/Call',
  requestStream: false,
  responseStream: false,
  requestSerialize: (b) => b,
  requestDeserialize: (b) => b,
  responseSerialize: (b) => b,
  responseDeserialize: (b) => b,
};

const HTTP_ROUTE = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: timeouts, namespace: shop }
spec:
  parentRefs:
    - { group: "", kind: Service, name: routed, port: 80 }
  rules:
    - matches: [{ path: { type: PathPrefix, value: /request } }]
      timeouts: { request: 300ms }
      backendRefs: [{ name: routed, port: 80 }]
    - matches: [{ path: { type: PathPrefix, value: /per-try } }]
      timeouts: { request: 5s, backendRequest: 1s }
      retry: { codes: [503], attempts: 2, backoff: 1ms }
      backendRefs: [{ name: routed, port: 80 }]
    - matches: [{ path: { type: PathPrefix, value: / } }]
      backendRefs: [{ name: routed, port: 80 }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: ws, namespace: shop }
spec:
  parentRefs:
    - { group: "", kind: Service, name: ws, port: 80 }
  rules:
    - timeouts: { request: 300ms }
      backendRefs: [{ name: ws, port: 80 }]
`;

const VIRTUAL_SERVICE = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: vs, namespace: shop }
spec:
  hosts: [vs.shop.svc.cluster.local]
  http:
    - match: [{ uri: { prefix: /timeout } }]
      timeout: 300ms
      route: [{ destination: { host: vs.shop.svc.cluster.local } }]
    - match: [{ uri: { prefix: /per-try } }]
      timeout: 1s
      retries: { attempts: 10, perTryTimeout: 300ms, retryOn: 5xx }
      route: [{ destination: { host: vs.shop.svc.cluster.local } }]
`;

let mesh: TestMesh;
let waypoint: Waypoint;
let backend: ControllableBackend;
let grpcCalls = 0;
let grpcCancelled = 0;
const log = accessLogCapture();

beforeAll(async () => {
  mesh = await TestMesh.create();
  await mesh.writeConfig(
    'mesh.yaml',
    [
      waypointYaml(),
      serviceYaml({
        name: 'routed',
        vip: ROUTED,
        port: 80,
        targetPort: 8080,
        pods: [{ name: 'routed-0', ip: '127.0.180.11' }],
      }),
      serviceYaml({
        name: 'vs',
        vip: VS,
        port: 80,
        targetPort: 8080,
        pods: [{ name: 'vs-0', ip: '127.0.180.12' }],
      }),
      serviceYaml({
        name: 'plain',
        vip: PLAIN,
        port: 80,
        targetPort: 8080,
        pods: [{ name: 'plain-0', ip: '127.0.180.13' }],
      }),
      serviceYaml({
        name: 'grpc',
        vip: GRPC_VIP.ip,
        port: GRPC_VIP.port,
        portName: 'grpc',
        pods: [{ name: 'grpc-0', ip: GRPC_POD }],
      }),
      serviceYaml({
        name: 'ws',
        vip: WS,
        port: 80,
        targetPort: 8080,
        pods: [{ name: 'ws-0', ip: '127.0.180.15' }],
      }),
      HTTP_ROUTE,
      VIRTUAL_SERVICE,
    ].join('---\n'),
  );
  backend = await ControllableBackend.start(mesh, 8080, [
    { name: 'routed-0', ip: '127.0.180.11', identity: id('shop', 'routed') },
    { name: 'vs-0', ip: '127.0.180.12', identity: id('shop', 'vs') },
    { name: 'plain-0', ip: '127.0.180.13', identity: id('shop', 'plain') },
  ]);
  // A gRPC server whose one method answers after 2 s (or when cancelled, never).
  const server = new grpc.Server();
  server.addService(
    { Call: SLOW },
    {
      Call: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        grpcCalls++;
        const timer = setTimeout(() => cb(null, Buffer.from('late')), 2_000);
        call.on('cancelled', () => {
          grpcCancelled++;
          clearTimeout(timer);
        });
      },
    },
  );
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`${GRPC_POD}:${GRPC_VIP.port}`, grpc.ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    ),
  );
  mesh.onClose(() => server.forceShutdown());
  await mesh.standIn(GRPC_POD, id('shop', 'grpc'));

  // A WebSocket echo server.
  const wss = new ws.WebSocketServer({ noServer: true });
  const wsServer = http.createServer((_req, res) => res.writeHead(426).end());
  wsServer.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) =>
    wss.handleUpgrade(req, socket, head, (sock) => {
      sock.on('error', () => {});
      (sock as unknown as { on(e: 'message', cb: (d: Buffer) => void): void }).on('message', (d) =>
        sock.send(`echo:${d.toString()}`),
      );
    }),
  );
  mesh.onClose(() => wss.close());
  await mesh.pod('127.0.180.15', 8080, wsServer, id('shop', 'ws'));

  waypoint = await mesh.startWaypoint({
    ip: WAYPOINT_IP,
    accessLog: 'all',
    accessLogStream: log.stream,
  });
});
afterAll(() => mesh.close());

const send = requester({
  mesh: () => mesh,
  waypoint: () => waypoint,
  log,
  prefix: 'timeouts',
  client: id('shop', 'sleep'),
});

// The backend sleeps 2 s and would then answer 200: a 504 with UT is the waypoint's timer, so no
// test here needs an upper bound on the time taken (a busy machine only makes requests slower).
it('answers 504 `upstream request timeout` (UT) when the backend sleeps past timeouts.request', async () => {
  backend.always({ delayMs: 2_000 });
  const r = await send(ROUTED, '/request');
  expect(r.status).toBe(504);
  expect(r.body).toBe('upstream request timeout');
  expect(r.headers['x-waypoint-reason']).toBe('upstream_request_timeout');
  expect(r.ms).toBeGreaterThanOrEqual(290);
  const line = await r.line();
  expect(flagsOf(line)).toBe('UT');
  expect(line).toContain('upstream_response_timeout');
  expect(backend.count()).toBe(1);
});

it('applies backendRequest per try when the rule has a retry: each attempt gets its own 1 s', async () => {
  // Three attempts of 400 ms each: over 1 s in total, yet each well within its own bound (600 ms
  // of room for a busy machine).
  backend.always({ delayMs: 400, status: 503 });
  const r = await send(ROUTED, '/per-try');
  expect(r.status).toBe(503);
  expect(backend.count('routed-0')).toBe(3);
  expect(r.ms).toBeGreaterThanOrEqual(1_190);
  expect(flagsOf(await r.line())).toBe('URX');
});

it('ends a slow try after backendRequest with 504 UT, well before timeouts.request', async () => {
  backend.always({ delayMs: 2_000 });
  const r = await send(ROUTED, '/per-try');
  expect(r.status).toBe(504);
  expect(r.body).toBe('upstream request timeout');
  expect(r.ms).toBeGreaterThanOrEqual(990);
  // HTTPRoute retry_on has no 5xx / gateway-error / reset, so a per-try timeout is not retried.
  expect(backend.count('routed-0')).toBe(1);
  expect(flagsOf(await r.line())).toContain('UT');
});

it('has no timeout on a rule without timeouts, nor on a Service without routes', async () => {
  backend.always({ delayMs: 1_200 });
  const [routed, plain] = await Promise.all([send(ROUTED, '/none'), send(PLAIN, '/none')]);
  for (const r of [routed, plain]) {
    expect(r.status).toBe(200);
    expect(r.ms).toBeGreaterThanOrEqual(1_190);
  }
});

it('honours a VirtualService timeout', async () => {
  backend.always({ delayMs: 2_000 });
  const r = await send(VS, '/timeout');
  expect(r.status).toBe(504);
  expect(r.body).toBe('upstream request timeout');
  expect(r.ms).toBeGreaterThanOrEqual(290);
  expect(flagsOf(await r.line())).toBe('UT');
});

it('retries a VirtualService perTryTimeout under the route timeout, which covers all retries', async () => {
  backend.always({ delayMs: 2_000 });
  const r = await send(VS, '/per-try');
  expect(r.status).toBe(504);
  expect(r.body).toBe('upstream request timeout');
  // 1 s for everything: about three 300 ms tries, never the eleven attempts allowed.
  expect(r.ms).toBeGreaterThanOrEqual(990);
  expect(backend.count('vs-0')).toBeGreaterThanOrEqual(2);
  expect(backend.count('vs-0')).toBeLessThanOrEqual(4);
  expect(flagsOf(await r.line())).toContain('UT');
});

it("honours a gRPC client's grpc-timeout: DEADLINE_EXCEEDED (grpc-status 4), UT, backend cancelled", async () => {
  // Without a client-side timer (undici, h2c): only the waypoint can end this call.
  const client = mesh.h2Client(
    await mesh.hboneClient(id('shop', 'sleep')),
    waypoint.addresses!.hbone,
    GRPC_VIP,
  );
  const requestId = 'timeouts-grpc-raw';
  const cancelled = grpcCancelled;
  const res = await client.request({
    method: 'POST',
    path: SLOW.path,
    headers: {
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-timeout': '300m',
      'x-request-id': requestId,
    },
    body: Buffer.from([0, 0, 0, 0, 0]), // one empty message
    headersTimeout: 15_000,
    bodyTimeout: 15_000,
  });
  await res.body.text();
  // The backend would answer OK after 2 s: DEADLINE_EXCEEDED and UT say the waypoint's timer ended it.
  expect(res.statusCode).toBe(200);
  expect(res.headers['grpc-status']).toBe('4');
  const line = await log.lineFor(requestId);
  expect(flagsOf(line)).toBe('UT');
  // Envoy's details for any timeout of the router, grpc-timeout included.
  expect(line).toContain(' UT upstream_response_timeout ');
  // The waypoint cancelled the upstream call rather than leaving it running for its 2 s.
  await until('the backend saw the cancel', () => grpcCancelled !== cancelled);
  expect(grpcCancelled).toBe(cancelled + 1);
});

it('ends a @grpc/grpc-js call at its deadline with DEADLINE_EXCEEDED and cancels it upstream', async () => {
  const local = await mesh.outbound({
    listen: { ip: '127.0.180.50', port: 0 },
    waypoint: waypoint.addresses!.hbone,
    destination: GRPC_VIP,
    identity: id('shop', 'frontend'),
  });
  const client = new grpc.Client(`${local.ip}:${local.port}`, grpc.credentials.createInsecure(), {
    'grpc.enable_http_proxy': 0,
  });
  mesh.onClose(() => client.close());
  const calls = grpcCalls;
  const cancelled = grpcCancelled;
  const err = await new Promise<grpc.ServiceError | null>((resolve) =>
    client.makeUnaryRequest(
      SLOW.path,
      SLOW.requestSerialize,
      SLOW.responseDeserialize,
      Buffer.alloc(0),
      new grpc.Metadata(),
      { deadline: Date.now() + 300 },
      (e) => resolve(e),
    ),
  );
  expect(err?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
  expect(grpcCalls).toBe(calls + 1);
  // The server-side call is cancelled, not left running for its 2 s.
  await until('the backend saw the cancel', () => grpcCancelled !== cancelled);
  expect(grpcCancelled).toBe(cancelled + 1);
});

it('never applies a route timeout to a WebSocket upgrade', async () => {
  const tunnel = await TestMesh.tunnel(
    await mesh.hboneClient(id('shop', 'sleep')),
    waypoint.addresses!.hbone,
    {
      ip: WS,
      port: 80,
    },
  );
  const sock = new ws.WebSocket(`ws://${WS}/chat`, undefined, { createConnection: () => tunnel });
  sock.on('error', () => {});
  const closed = new Promise<void>((r) => sock.once('close', () => r()));
  await new Promise<void>((resolve, reject) => {
    sock.once('open', () => resolve());
    sock.once('error', (e: never) => reject(e));
  });
  // Well past the route's 300 ms: the connection is still up and echoes.
  await new Promise((r) => setTimeout(r, 800));
  const reply = new Promise<string>((r) => sock.once('message', ((d: Buffer) => r(d.toString())) as never));
  sock.send('hello');
  expect(await reply).toBe('echo:hello');
  sock.close();
  await closed;
});
