// Fault injection through a real waypoint (VirtualService `fault`, l7-semantics.md §5.6): an abort
// answers locally (body `fault filter abort`, flag FI) and is never retried nor sent; a gRPC
// abort carries its grpc-status; a delay holds the request (flag DI); percentages hold over many
// requests (5-sigma bounds), and delay and abort are drawn independently.
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

const WAYPOINT_IP = '127.0.184.100';
const FAULTY = '127.0.184.1';
const GRPC_VIP = { ip: '127.0.184.2', port: 50051 };
const GRPC_POD = '127.0.184.12';

const rule = (prefix: string, extra: string) => `    - match: [{ uri: { prefix: ${prefix} } }]
${extra}      route: [{ destination: { host: faulty.shop.svc.cluster.local } }]
`;

const VIRTUAL_SERVICES = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: faulty, namespace: shop }
spec:
  hosts: [faulty.shop.svc.cluster.local]
  http:
${rule(
  '/abort',
  `      fault: { abort: { httpStatus: 418, percentage: { value: 100 } } }
      retries: { attempts: 3, retryOn: "5xx,retriable-4xx,418" }
`,
)}${rule('/delay', '      fault: { delay: { fixedDelay: 200ms, percentage: { value: 100 } } }\n')}${rule(
  '/thirty',
  '      fault: { abort: { httpStatus: 503, percentage: { value: 30 } } }\n',
)}${rule(
  '/both',
  `      fault:
        delay: { fixedDelay: 1ms, percentage: { value: 50 } }
        abort: { httpStatus: 503, percentage: { value: 50 } }
`,
)}${rule('/', '')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: grpc, namespace: shop }
spec:
  hosts: [grpc.shop.svc.cluster.local]
  http:
    - fault: { abort: { grpcStatus: UNAVAILABLE, percentage: { value: 100 } } }
      route: [{ destination: { host: grpc.shop.svc.cluster.local } }]
`;

let mesh: TestMesh;
let waypoint: Waypoint;
let backend: ControllableBackend;
let grpcClient: grpc.Client;
const log = accessLogCapture();

beforeAll(async () => {
  mesh = await TestMesh.create();
  await mesh.writeConfig(
    'mesh.yaml',
    [
      waypointYaml(),
      serviceYaml({
        name: 'faulty',
        vip: FAULTY,
        port: 80,
        targetPort: 8080,
        pods: [{ name: 'faulty-0', ip: '127.0.184.11' }],
      }),
      serviceYaml({
        name: 'grpc',
        vip: GRPC_VIP.ip,
        port: GRPC_VIP.port,
        portName: 'grpc',
        pods: [{ name: 'grpc-0', ip: GRPC_POD }],
      }),
      VIRTUAL_SERVICES,
    ].join('---\n'),
  );
  backend = await ControllableBackend.start(mesh, 8080, [
    { name: 'faulty-0', ip: '127.0.184.11', identity: id('shop', 'faulty') },
  ]);
  // A plain HTTP/1 server would do: a gRPC request that reaches it fails, which the test would see.
  await ControllableBackend.start(mesh, GRPC_VIP.port, [
    { name: 'grpc-0', ip: GRPC_POD, identity: id('shop', 'grpc') },
  ]);
  waypoint = await mesh.startWaypoint({
    ip: WAYPOINT_IP,
    accessLog: 'all',
    accessLogStream: log.stream,
  });
  const local = await mesh.outbound({
    listen: { ip: '127.0.184.50', port: 0 },
    waypoint: waypoint.addresses!.hbone,
    destination: GRPC_VIP,
    identity: id('shop', 'frontend'),
  });
  grpcClient = new grpc.Client(`${local.ip}:${local.port}`, grpc.credentials.createInsecure(), {
    'grpc.enable_http_proxy': 0,
  });
  mesh.onClose(() => grpcClient.close());
});
afterAll(() => mesh.close());

const request = requester({
  mesh: () => mesh,
  waypoint: () => waypoint,
  log,
  prefix: 'fault',
  client: id('shop', 'sleep'),
});
const send = (path: string) => request(FAULTY, path);

/** n requests, `width` at a time (bounded both ways). */
async function many(n: number, path: string, width = 20) {
  const out: Awaited<ReturnType<typeof send>>[] = [];
  for (let i = 0; i < n; i += width)
    out.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(width, n - i) }, (_, k) => send(`${path}/${i + k}`)),
      )),
    );
  return out;
}

/** Expected count of n Bernoulli(p) draws, ± 5 standard deviations. */
function fiveSigma(n: number, p: number): [number, number] {
  const sd = Math.sqrt(n * p * (1 - p));
  return [n * p - 5 * sd, n * p + 5 * sd];
}

it('aborts with 418 `fault filter abort` (FI): not retried, never sent to the backend', async () => {
  backend.always({});
  const r = await send('/abort');
  expect(r.status).toBe(418);
  expect(r.body).toBe('fault filter abort');
  expect(flagsOf(await r.line())).toBe('FI');
  expect(backend.count()).toBe(0);
});

it('aborts a gRPC call with its grpcStatus (UNAVAILABLE)', async () => {
  const err = await new Promise<grpc.ServiceError | null>((resolve) =>
    grpcClient.makeUnaryRequest(
      '/waypoint.test.Echo/Unary',
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.alloc(0),
      new grpc.Metadata(),
      { deadline: Date.now() + 10_000 },
      (e) => resolve(e),
    ),
  );
  expect(err?.code).toBe(grpc.status.UNAVAILABLE);
  expect(err?.details).toBe('fault filter abort');
});

it('delays by fixedDelay (DI), then forwards', async () => {
  backend.always({});
  const r = await send('/delay');
  expect(r.status).toBe(200);
  expect(r.ms).toBeGreaterThanOrEqual(195);
  expect(flagsOf(await r.line())).toBe('DI');
  expect(backend.count()).toBe(1);
});

it('aborts about 30% of 1000 requests (within 5 sigma)', async () => {
  backend.always({});
  const results = await many(1000, '/thirty');
  const aborted = results.filter((r) => r.status === 503).length;
  const [lo, hi] = fiveSigma(1000, 0.3);
  expect(aborted).toBeGreaterThan(lo);
  expect(aborted).toBeLessThan(hi);
  expect(results.filter((r) => r.status === 200).length).toBe(1000 - aborted);
  expect(backend.count()).toBe(1000 - aborted);
});

it('decides delay and abort independently', async () => {
  backend.always({});
  const results = await many(400, '/both');
  const cells = { both: 0, delayOnly: 0, abortOnly: 0, neither: 0 };
  for (const r of results) {
    const flags = flagsOf(await r.line()).split(',');
    const delayed = flags.includes('DI');
    const aborted = flags.includes('FI');
    expect(aborted).toBe(r.status === 503);
    if (delayed && aborted) cells.both++;
    else if (delayed) cells.delayOnly++;
    else if (aborted) cells.abortOnly++;
    else cells.neither++;
  }
  // Independent 50% draws: each of the four cells holds a quarter.
  const [lo, hi] = fiveSigma(400, 0.25);
  for (const count of Object.values(cells)) {
    expect(count).toBeGreaterThan(lo);
    expect(count).toBeLessThan(hi);
  }
});
