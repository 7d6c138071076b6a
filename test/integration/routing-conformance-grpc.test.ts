// Gateway API mesh conformance, MESH-GRPC (l7-semantics.md §6.2): GRPCRoute header modifiers and
// weights through a real waypoint, with @grpc/grpc-js clients (behind a ztunnel outbound stand-in)
// and servers (on pod IPs behind inbound stand-ins) that echo their pod name and the metadata they
// received. Plus the gRPC shape of the waypoint's local replies (§5.1): 404 → 12, 500 → 2, 503 → 14.
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoutingConfig } from '../../filters/routing/model.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { eventually, id, ROOT, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const NS = 'gateway-conformance-mesh';
const WAYPOINT_ID = id(NS, 'waypoint');
const WAYPOINT_IP = '127.0.157.1';
const VIP = { echo: '127.0.155.1', 'echo-v1': '127.0.155.2', 'echo-v2': '127.0.155.3', idle: '127.0.155.4' };
const POD = { v1: '127.0.156.1', v2: '127.0.156.2', idle: '127.0.156.3' };
const GRPC_PORT = 7070;

interface Msg {
  text: string;
  seq: number;
  payload: Buffer;
}
interface EchoClient extends grpc.Client {
  Unary(
    req: Partial<Msg>,
    md: grpc.Metadata,
    cb: (err: grpc.ServiceError | null, value?: Msg) => void,
  ): grpc.ClientUnaryCall;
}
const definition = protoLoader.loadSync(join(ROOT, 'test/fixtures/echo.proto'), {
  keepCase: true,
  longs: Number,
  defaults: true,
});
const Echo = (
  grpc.loadPackageDefinition(definition) as unknown as {
    waypoint: { test: { Echo: grpc.ServiceClientConstructor } };
  }
).waypoint.test.Echo;

/** A gRPC server whose Unary answers `{pod, metadata}` as JSON text (repeated values joined with `,`). */
function echoServer(pod: string): grpc.Server {
  const server = new grpc.Server();
  server.addService(Echo.service, {
    Unary(call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) {
      const metadata: Record<string, string> = {};
      for (const key of Object.keys(call.metadata.getMap()))
        metadata[key] = call.metadata.get(key).map(String).join(',');
      cb(null, { text: JSON.stringify({ pod, metadata }), seq: call.request.seq, payload: Buffer.alloc(0) });
    },
  });
  return server;
}

function service(name: string, vip: string, selector: Record<string, string>, appProtocol?: string): string {
  return `apiVersion: v1
kind: Service
metadata:
  name: ${name}
  namespace: ${NS}
spec:
  clusterIP: ${vip}
  selector: ${JSON.stringify(selector)}
  ports:
    - { name: http, port: 80, targetPort: 8080, appProtocol: http }
    - { name: http-alt, port: 8080, targetPort: 8080, appProtocol: http }
    - { name: grpc, port: ${GRPC_PORT}, targetPort: ${GRPC_PORT}${appProtocol ? `, appProtocol: ${appProtocol}` : ''} }
`;
}

function pod(name: string, ip: string, labels: Record<string, string>, ready = true): string {
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ${NS}
  labels: ${JSON.stringify(labels)}
spec:
  serviceAccountName: ${name.replace(/-\d+$/, '')}
  containers: [{ name: app, image: echo }]
status:
  phase: Running
  podIP: ${ip}
  conditions: [{ type: Ready, status: "${ready ? 'True' : 'False'}" }]
`;
}

let mesh: TestMesh;
let waypoint: Waypoint;
let echo: EchoClient;

beforeAll(async () => {
  mesh = await TestMesh.create();
  await mesh.writeConfig(
    'fixture.yaml',
    [
      waypointYaml(NS, 'waypoint', 'all'),
      service('echo', VIP.echo, { app: 'echo' }, 'kubernetes.io/h2c'),
      service('echo-v1', VIP['echo-v1'], { app: 'echo', version: 'v1' }),
      service('echo-v2', VIP['echo-v2'], { app: 'echo', version: 'v2' }),
      service('idle', VIP.idle, { app: 'idle' }),
      pod('echo-v1-0', POD.v1, { app: 'echo', version: 'v1' }),
      pod('echo-v2-0', POD.v2, { app: 'echo', version: 'v2' }),
      pod('idle-0', POD.idle, { app: 'idle' }, false),
    ].join('---\n'),
  );
  for (const [ip, name] of [
    [POD.v1, 'echo-v1-0'],
    [POD.v2, 'echo-v2-0'],
  ] as const) {
    const server = echoServer(name);
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`${ip}:${GRPC_PORT}`, grpc.ServerCredentials.createInsecure(), (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    mesh.onClose(() => server.forceShutdown());
    await mesh.standIn(ip, id(NS, name.replace(/-\d+$/, '')));
  }
  waypoint = await mesh.startWaypoint({
    gateway: { namespace: NS, name: 'waypoint' },
    identity: WAYPOINT_ID,
    ip: WAYPOINT_IP,
  });
  // The conformance client: a pod of echo-v1 dialling echo:7070 through its ztunnel.
  const local = await mesh.outbound({
    listen: { ip: '127.0.158.1', port: 0 },
    waypoint: waypoint.addresses!.hbone,
    waypointIdentity: WAYPOINT_ID,
    destination: { ip: VIP.echo, port: GRPC_PORT },
    identity: id(NS, 'echo-v1'),
  });
  echo = new Echo(`${local.ip}:${local.port}`, grpc.credentials.createInsecure(), {
    'grpc.enable_http_proxy': 0,
  }) as unknown as EchoClient;
  mesh.onClose(() => echo.close());
});
afterAll(() => mesh.close());

/** Replaces the routes in force and waits until the waypoint reports exactly these routes. */
async function useRoutes(yaml: string, names: string[]): Promise<void> {
  const tmp = join(mesh.dir, 'routes.tmp');
  await writeFile(tmp, yaml);
  await rename(tmp, join(mesh.configDir, 'routes.yaml'));
  await waypoint.reload();
  await eventually(
    () => {
      const statuses = (waypoint.snapshot?.filters.routing as RoutingConfig | undefined)?.statuses ?? [];
      return JSON.stringify(statuses.map((s) => s.name).sort()) === JSON.stringify([...names].sort());
    },
    `routes ${names.join(', ')} in force`,
  );
}

interface Call {
  err: grpc.ServiceError | null;
  pod: string | undefined;
  metadata: Record<string, string>;
}

function call(headers: Record<string, string>): Promise<Call> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) md.set(k, v);
  return new Promise((resolve) => {
    echo.Unary({ text: 'hi' }, md, (err, res) => {
      const echoed = res
        ? (JSON.parse(res.text) as { pod: string; metadata: Record<string, string> })
        : undefined;
      resolve({ err, pod: echoed?.pod, metadata: echoed?.metadata ?? {} });
    });
  });
}

function grpcRoute(name: string, rules: string): string {
  return `apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata:
  name: ${name}
  namespace: ${NS}
spec:
  parentRefs: [{ group: "", kind: Service, name: echo, port: ${GRPC_PORT} }]
  rules:
${rules}`;
}

const testCase = (value: string) => `[{ headers: [{ name: x-test-case, value: ${value} }] }]`;

describe('MeshGRPCRouteRequestHeaderModifier', () => {
  beforeAll(() =>
    useRoutes(
      grpcRoute(
        'grpc-request-header-modifier',
        `    - matches: ${testCase('set')}
      filters: [{ type: RequestHeaderModifier, requestHeaderModifier: { set: [{ name: x-header-set, value: set-overwrites-values }] } }]
      backendRefs: [{ name: echo-v1, port: ${GRPC_PORT} }]
    - matches: ${testCase('add')}
      filters: [{ type: RequestHeaderModifier, requestHeaderModifier: { add: [{ name: x-header-add, value: add-appends-values }] } }]
      backendRefs: [{ name: echo-v1, port: ${GRPC_PORT} }]
    - matches: ${testCase('remove')}
      filters: [{ type: RequestHeaderModifier, requestHeaderModifier: { remove: [x-header-remove] } }]
      backendRefs: [{ name: echo-v1, port: ${GRPC_PORT} }]
    - matches: ${testCase('multi')}
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier:
            set: [{ name: x-header-set-1, value: header-set-1 }, { name: x-header-set-2, value: header-set-2 }]
            add: [{ name: x-header-add-1, value: header-add-1 }, { name: x-header-add-2, value: header-add-2 }]
            remove: [x-header-remove-1, x-header-remove-2]
      backendRefs: [{ name: echo-v2, port: ${GRPC_PORT} }]
`,
      ),
      ['grpc-request-header-modifier'],
    ),
  );

  function expectBackend(
    c: Call,
    backend: string,
    headers: Record<string, string>,
    absent: string[] = [],
  ): void {
    expect(c.err).toBeNull();
    expect(c.pod?.startsWith(`${backend}-`), `pod ${c.pod}`).toBe(true);
    for (const [k, v] of Object.entries(headers)) expect(c.metadata[k], k).toBe(v);
    for (const k of absent) expect(c.metadata[k], k).toBeUndefined();
  }

  it('set overwrites the header', async () => {
    expectBackend(await call({ 'x-test-case': 'set', 'x-header-set': 'some-other-value' }), 'echo-v1', {
      'x-header-set': 'set-overwrites-values',
    });
    expectBackend(await call({ 'x-test-case': 'set' }), 'echo-v1', {
      'x-header-set': 'set-overwrites-values',
    });
  });
  it('add appends to what the client sent', async () => {
    expectBackend(await call({ 'x-test-case': 'add' }), 'echo-v1', { 'x-header-add': 'add-appends-values' });
    expectBackend(await call({ 'x-test-case': 'add', 'x-header-add': 'some-value' }), 'echo-v1', {
      'x-header-add': 'some-value,add-appends-values',
    });
  });
  it('remove deletes the header', async () => {
    expectBackend(await call({ 'x-test-case': 'remove', 'x-header-remove': 'val' }), 'echo-v1', {}, [
      'x-header-remove',
    ]);
  });
  it('multi sets, adds and removes several headers, on echo-v2', async () => {
    const c = await call({
      'x-test-case': 'multi',
      'x-header-set-2': 'set-val-2',
      'x-header-add-2': 'add-header-2',
      'x-header-remove-2': 'remove-val-2',
      'x-another-header': 'another',
    });
    expectBackend(
      c,
      'echo-v2',
      {
        'x-header-set-1': 'header-set-1',
        'x-header-set-2': 'header-set-2',
        'x-header-add-1': 'header-add-1',
        'x-header-add-2': 'add-header-2,header-add-2',
        'x-another-header': 'another',
      },
      ['x-header-remove-1', 'x-header-remove-2'],
    );
  });
});

describe('MeshGRPCRouteWeight', () => {
  beforeAll(() =>
    useRoutes(
      grpcRoute(
        'weighted-backends',
        `    - backendRefs:
        - { name: echo-v1, port: ${GRPC_PORT}, weight: 70 }
        - { name: echo-v2, port: ${GRPC_PORT}, weight: 30 }
        - { name: echo-v3, port: ${GRPC_PORT}, weight: 0 }
`,
      ),
      ['weighted-backends'],
    ),
  );
  it('splits 500 calls 70/30/0 within ±5 points', async () => {
    const want: Record<string, number> = { 'echo-v1': 0.7, 'echo-v2': 0.3, 'echo-v3': 0 };
    let shares: Record<string, number> = {};
    // As the conformance suite does: up to 10 rounds of 500, so chance alone does not fail it.
    for (let round = 0; round < 10; round++) {
      const counts: Record<string, number> = {};
      for (let i = 0; i < 500; i++) {
        const c = await call({});
        expect(c.err).toBeNull();
        const backend = c.pod?.replace(/-\d+$/, '') ?? 'none';
        counts[backend] = (counts[backend] ?? 0) + 1;
      }
      shares = Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v / 500]));
      const names = new Set([...Object.keys(want), ...Object.keys(shares)]);
      if ([...names].every((k) => Math.abs((shares[k] ?? 0) - (want[k] ?? 0)) <= 0.05)) return;
    }
    expect(shares).toEqual(want);
  });
});

describe('gRPC-shaped local replies', () => {
  beforeAll(() =>
    useRoutes(
      grpcRoute(
        'grpc-local-replies',
        `    - matches: ${testCase('zero-weight')}
      backendRefs: [{ name: echo-v1, port: ${GRPC_PORT}, weight: 0 }]
    - matches: ${testCase('idle')}
      backendRefs: [{ name: idle, port: ${GRPC_PORT} }]
    - matches: ${testCase('missing')}
      backendRefs: [{ name: echo-v9, port: ${GRPC_PORT} }]
`,
      ),
      ['grpc-local-replies'],
    ),
  );
  it('answers UNIMPLEMENTED (12) when no rule matches (404)', async () => {
    const c = await call({ 'x-test-case': 'nothing' });
    expect(c.err?.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(c.err?.metadata.get('x-waypoint-reason')).toEqual(['route_not_found']);
  });
  it('answers UNKNOWN (2) for a rule with zero total weight (500)', async () => {
    const c = await call({ 'x-test-case': 'zero-weight' });
    expect(c.err?.code).toBe(grpc.status.UNKNOWN);
    expect(c.err?.metadata.get('x-waypoint-reason')).toEqual(['route_no_backend']);
  });
  it('answers UNKNOWN (2) for a backendRef to a missing Service (500)', async () => {
    const c = await call({ 'x-test-case': 'missing' });
    expect(c.err?.code).toBe(grpc.status.UNKNOWN);
    expect(c.err?.metadata.get('x-waypoint-reason')).toEqual(['cluster_not_found']);
  });
  it('answers UNAVAILABLE (14) no healthy upstream for a backend without ready endpoints (503)', async () => {
    const c = await call({ 'x-test-case': 'idle' });
    expect(c.err?.code).toBe(grpc.status.UNAVAILABLE);
    expect(c.err?.details).toBe('no healthy upstream');
  });
});
