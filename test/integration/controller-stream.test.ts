// A real waypoint configured by a real config stream server (gRPC over mutual TLS, dev-CA
// certificates), the Kubernetes side replaced by an in-memory SliceSource.
// Addresses: controller 127.3.10.1, waypoints 127.3.10.2 and .3, VIP 127.3.11.10, pods 127.3.12.x.
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { controllerConfigSource } from '../../src/controller/config-client.ts';
import type { KubeDocument } from '../../src/controller/slice-source.ts';
import { type ConfigStreamServer, startConfigStreamServer } from '../../src/controller/stream-server.ts';
import { createLogger } from '../../src/observe/logger.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { MemorySliceSource } from '../helpers/memory-slice-source.ts';
import {
  eventually,
  getText,
  id,
  type PodSpec,
  serviceYaml,
  TestMesh,
  waypointYaml,
} from '../helpers/mesh.ts';

const CONTROLLER = '127.3.10.1';
const CONTROLLER_ID = id('istio-system', 'node-waypoint-controller');
const REVIEWS = { ip: '127.3.11.10', port: 9080 };
const POD_A: PodSpec = { name: 'reviews-a', ip: '127.3.12.11' };
const POD_B: PodSpec = { name: 'reviews-b', ip: '127.3.12.12' };
const GATEWAY = 'shop/waypoint';

const docs = (yaml: string): KubeDocument[] => parseAllDocuments(yaml).map((d) => d.toJSON() as KubeDocument);
const reviews = (...pods: PodSpec[]) =>
  docs(serviceYaml({ name: 'reviews', vip: REVIEWS.ip, port: REVIEWS.port, pods }));

interface Dump {
  configSource: { type: string; version: string | null; connected: boolean; lastError?: string };
  rejected: Array<{ message: string }>;
}

describe('run --controller', () => {
  let mesh: TestMesh;
  let source: MemorySliceSource;
  let server: ConfigStreamServer;
  let port: number;
  let waypoint: Waypoint;
  const controllerLog: string[] = [];

  const startController = async (p = 0): Promise<ConfigStreamServer> =>
    startConfigStreamServer({
      source,
      listen: { host: CONTROLLER, port: p },
      credentials: await mesh.credentials(CONTROLLER_ID),
      log: createLogger('debug', (l) => controllerLog.push(l)),
      metrics: new Registry(),
      debounceMs: 10,
    });
  const startWaypoint = async (ip: string, identity: string, controllerIdentity = CONTROLLER_ID) => {
    const credentials = await mesh.credentials(identity);
    return mesh.startWaypoint({
      ip,
      credentials,
      configPaths: [],
      configSource: controllerConfigSource({
        address: `${CONTROLLER}:${port}`,
        identity: controllerIdentity,
        credentials,
        log: createLogger('error', () => {}),
        backoff: { initialMs: 20, maxMs: 100 },
      }),
    });
  };
  const dump = async (wp = waypoint): Promise<Dump> =>
    JSON.parse((await getText(wp.addresses!.admin, '/config_dump')).body) as Dump;
  const ready = async (wp = waypoint) => (await getText(wp.addresses!.admin, '/healthz/ready')).status;
  let pool: ReturnType<TestMesh['httpPool']>;
  const routeHeader = async (): Promise<string | undefined> => {
    const res = await pool.request({ method: 'GET', path: '/', headers: { host: 'reviews' } });
    await res.body.text();
    return res.headers['x-route'] as string | undefined;
  };
  const podServing = async (): Promise<string> => {
    const res = await pool.request({ method: 'GET', path: '/', headers: { host: 'reviews' } });
    const body = await res.body.text();
    return res.statusCode === 200
      ? (JSON.parse(body) as { pod: string }).pod
      : `status ${res.statusCode} ${String(res.headers['x-waypoint-reason'])} ${body}`;
  };

  beforeAll(async () => {
    mesh = await TestMesh.create();
    for (const pod of [POD_A, POD_B])
      await mesh.pod(pod.ip, REVIEWS.port, TestMesh.echoServer(pod.name), id('shop', 'reviews'));
    source = new MemorySliceSource();
    source.addGateway(GATEWAY);
    source.put(GATEWAY, ...docs(waypointYaml()), ...reviews(POD_A));
    server = await startController();
    port = server.address.port;
    waypoint = await startWaypoint('127.3.10.2', id('shop', 'waypoint'));
    pool = mesh.httpPool(await mesh.hboneClient(id('shop', 'sleep')), waypoint.addresses!.hbone, REVIEWS);
  });
  afterAll(async () => {
    await mesh.close();
    await server.close();
  });

  it('is ready after the full snapshot, serves it, and follows a delta (a pod IP changes)', async () => {
    await eventually(async () => (await ready()) === 200, 'readiness');
    expect(await podServing()).toBe('reviews-a');
    expect((await dump()).configSource).toMatchObject({
      type: 'controller',
      connected: true,
      version: source.slice(GATEWAY)!.version,
    });

    source.remove(GATEWAY, '/Pod/shop/reviews-a');
    source.put(GATEWAY, ...reviews(POD_B));
    const version = source.slice(GATEWAY)!.version;
    await eventually(
      async () => (await dump()).configSource.version === version,
      `version ${version} applied`,
    );
    expect(await podServing()).toBe('reviews-b');
  });

  it('rejects a bad edit alone: its last good version stays, the NACK names it, the rest applies', async () => {
    const route = (port: string) =>
      docs(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: reviews, namespace: shop }
spec:
  parentRefs: [{ group: "", kind: Service, name: reviews, port: 9080 }]
  rules:
    - filters: [{ type: ResponseHeaderModifier, responseHeaderModifier: { set: [{ name: x-route, value: good }] } }]
      backendRefs: [{ name: reviews, port: ${port} }]
`)[0]!;
    source.put(GATEWAY, route('9080'));
    await eventually(async () => (await routeHeader()) === 'good', 'the good route');
    // One push: the route broken, and pod b replaced by pod a, which must apply anyway.
    source.remove(GATEWAY, '/Pod/shop/reviews-b');
    source.put(GATEWAY, route('"eighty"'), ...reviews(POD_A));
    const version = source.slice(GATEWAY)!.version;
    await eventually(
      async () => (await dump()).configSource.version === version,
      `version ${version} applied`,
    );
    expect(await podServing()).toBe('reviews-a');
    expect(await routeHeader()).toBe('good');
    const message = (await dump()).rejected.map((r) => r.message).find((m) => m.includes('HTTPRoute'));
    const origin = `controller ${CONTROLLER}:${port}`;
    expect(message).toMatch(
      new RegExp(`^${origin}: HTTPRoute shop/reviews: spec\\.rules\\[0\\]\\.backendRefs\\[0\\]\\.port`),
    );
    expect(message).toContain(`; keeping the last good version from ${origin}`);
    const nack = await eventually(
      () =>
        controllerLog
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .find((l) => l.rejected === message),
      'the NACK in the controller log',
    );
    expect(nack).toMatchObject({
      level: 'warn',
      msg: 'config stream: NACK: waypoint rejected a resource',
      version,
    });
    source.remove(GATEWAY, 'gateway.networking.k8s.io/HTTPRoute/shop/reviews');
  });

  it('takes the ext_authz providers from the mesh config ConfigMap in the slice', async () => {
    const [policy] = docs(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ext, namespace: shop }
spec:
  targetRefs: [{ group: "", kind: Service, name: reviews }]
  action: CUSTOM
  provider: { name: open }
  rules: [{}]
`);
    const meshConfig = (provider: string) =>
      docs(`apiVersion: v1
kind: ConfigMap
metadata: { name: istio, namespace: istio-system }
data:
  mesh: |
    extensionProviders:
      - name: ${provider}
        envoyExtAuthzHttp: { service: 127.3.13.1, port: 9, failOpen: true }
`)[0]!;
    // A CUSTOM policy whose provider the mesh config does not define denies.
    source.put(GATEWAY, policy!);
    await eventually(
      async () => (await podServing()).startsWith('status 403 authz_denied'),
      'CUSTOM without its provider denies',
    );
    // The provider arrives (unreachable, failOpen): allowed.
    source.put(GATEWAY, meshConfig('open'));
    await eventually(
      async () => (await podServing()).startsWith('reviews-'),
      'the provider from the ConfigMap',
    );
    // A bad mesh config is rejected, and the providers in force stay.
    source.put(GATEWAY, { ...meshConfig('open'), data: { mesh: 'extensionProviders: {}' } });
    const version = source.slice(GATEWAY)!.version;
    await eventually(
      async () => (await dump()).configSource.version === version,
      `version ${version} applied`,
    );
    expect((await dump()).rejected.map((r) => r.message)).toContain(
      `controller ${CONTROLLER}:${port}: ConfigMap istio-system/istio: extensionProviders: expected a list; keeping the ext_authz providers in force`,
    );
    expect(await podServing()).toMatch(/^reviews-/);
    source.remove(GATEWAY, 'security.istio.io/AuthorizationPolicy/shop/ext', '/ConfigMap/istio-system/istio');
    const removed = source.slice(GATEWAY)!.version;
    await eventually(async () => (await dump()).configSource.version === removed, 'the policy removed');
  });

  it('keeps serving while the controller is down, and resyncs when it is back', async () => {
    const before = await podServing();
    const [gone, next] = before === POD_A.name ? [POD_A, POD_B] : [POD_B, POD_A];
    await server.close();
    await eventually(
      async () => (await dump()).configSource.connected === false,
      'the waypoint sees the stream end',
    );
    expect(await ready()).toBe(200);
    expect(await podServing()).toBe(before);
    expect((await dump()).configSource.lastError).toMatch(/UNAVAILABLE|CANCELLED/);

    // Changed while it was away: the restarted controller's full snapshot brings it.
    source.remove(GATEWAY, `/Pod/shop/${gone.name}`);
    source.put(GATEWAY, ...reviews(next));
    server = await startController(port);
    const version = source.slice(GATEWAY)!.version;
    await eventually(async () => (await dump()).configSource.version === version, 'the resync', 10_000);
    expect((await dump()).configSource.connected).toBe(true);
    expect(await podServing()).toBe(next.name);
  });

  it('refuses a controller that presents another identity than --controller-identity', async () => {
    const expected = id('istio-system', 'someone-else');
    const other = await startWaypoint('127.3.10.3', id('shop', 'waypoint'), expected);
    const d = await eventually(async () => {
      const x = await dump(other);
      return x.configSource.lastError ? x : undefined;
    }, 'a failed connection');
    expect(d.configSource.lastError).toBe(`the controller presented ${CONTROLLER_ID}, expected ${expected}`);
    expect(d.configSource.version).toBeNull();
    expect(await ready(other)).toBe(503);
    await other.close();
  });

  it('is refused by the controller when its identity is not the Gateway’s ServiceAccount', async () => {
    const intruder = await startWaypoint('127.3.10.3', id('shop', 'reviews'));
    const d = await eventually(async () => {
      const x = await dump(intruder);
      return x.configSource.lastError ? x : undefined;
    }, 'a refused stream');
    expect(d.configSource.lastError).toMatch(
      /^PERMISSION_DENIED: spiffe:\/\/cluster.local\/ns\/shop\/sa\/reviews may not read/,
    );
    expect(await ready(intruder)).toBe(503);
    await intruder.close();
  });
});
