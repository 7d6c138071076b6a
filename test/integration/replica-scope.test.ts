// Limits meant for the whole waypoint, through a real waypoint whose configuration declares two
// live replicas (Ready Pods labelled with the Gateway's name): a Local rate limit with scope
// Waypoint, and a DestinationRule connection pool with the connection-pool-scope annotation, are
// both divided by 2 in this replica.
// Addresses: waypoint 127.0.200.2, VIPs 127.0.201.N, pods 127.0.202.N.
import type { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Waypoint } from '../../src/waypoint.ts';
import { accessLogCapture, ControllableBackend, flagsOf } from '../helpers/controllable-backend.ts';
import { id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const WAYPOINT_IP = '127.0.200.2';
const LIMITED = '127.0.201.1';
const POOLED = '127.0.201.2';
const LIMITED_POD = '127.0.202.1';
const POOLED_POD = '127.0.202.2';

const OVERFLOW_BODY = 'upstream connect error or disconnect/reset before headers. reset reason: overflow';

/** A live replica of the waypoint, as Istio labels its pods. */
const replica = (name: string) => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: shop
  labels:
    gateway.networking.k8s.io/gateway-name: waypoint
status:
  phase: Running
  conditions: [{type: Ready, status: "True"}]
`;

const RATE_LIMIT = `apiVersion: waypoint.node-waypoint.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: whole-waypoint, namespace: shop}
spec:
  targetRefs:
    - {group: "", kind: Service, name: limited}
  rateLimit:
    type: Local
    local:
      scope: Waypoint
      rules:
        - limit: {requests: 10, unit: Hour}
`;

const DESTINATION_RULE = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: pooled
  namespace: shop
  annotations:
    waypoint.node-waypoint.io/connection-pool-scope: waypoint
spec:
  host: pooled.shop.svc.cluster.local
  trafficPolicy:
    connectionPool:
      http: {http2MaxRequests: 2}
`;

let mesh: TestMesh;
let waypoint: Waypoint;
let backend: ControllableBackend;
const log = accessLogCapture();
const pools = new Map<string, Pool>();
let seq = 0;

beforeAll(async () => {
  mesh = await TestMesh.create();
  await mesh.writeConfig(
    'mesh.yaml',
    [
      waypointYaml(),
      replica('waypoint-0'),
      replica('waypoint-1'),
      serviceYaml({
        name: 'limited',
        vip: LIMITED,
        port: 80,
        targetPort: 8080,
        pods: [{ name: 'limited-0', ip: LIMITED_POD }],
      }),
      serviceYaml({
        name: 'pooled',
        vip: POOLED,
        port: 80,
        targetPort: 8080,
        pods: [{ name: 'pooled-0', ip: POOLED_POD }],
      }),
      RATE_LIMIT,
      DESTINATION_RULE,
    ].join('---\n'),
  );
  backend = await ControllableBackend.start(mesh, 8080, [
    { name: 'limited-0', ip: LIMITED_POD, identity: id('shop', 'limited') },
    { name: 'pooled-0', ip: POOLED_POD, identity: id('shop', 'pooled') },
  ]);
  waypoint = await mesh.startWaypoint({
    ip: WAYPOINT_IP,
    accessLog: 'all',
    accessLogStream: log.stream,
  });
  expect(waypoint.snapshot!.messages).toEqual([]);
});
afterAll(() => mesh.close());

async function send(vip: string, path = '/') {
  let pool = pools.get(vip);
  if (!pool) {
    pool = mesh.httpPool(await mesh.hboneClient(id('shop', 'sleep')), waypoint.addresses!.hbone, {
      ip: vip,
      port: 80,
    });
    pools.set(vip, pool);
  }
  const requestId = `replica-scope-${++seq}`;
  const res = await pool.request({
    method: 'GET',
    path,
    headers: { host: 'svc', 'x-request-id': requestId },
    headersTimeout: 15_000,
    bodyTimeout: 15_000,
  });
  const body = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body, line: () => log.lineFor(requestId) };
}

describe('limits for the whole waypoint, with 2 live replicas', () => {
  it('learns the replica count from the waypoint pods in the configuration', () => {
    expect(waypoint.snapshot!.gateway).toMatchObject({ replicas: 2, replicasKnown: true });
  });

  it('a Local limit of 10 per hour with scope Waypoint lets exactly 5 through in this replica', async () => {
    backend.always({});
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await send(LIMITED, `/r${i}`)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
    const sixth = await send(LIMITED, '/r5');
    expect(sixth.status).toBe(429);
    expect(sixth.body).toBe('local_rate_limited');
    expect(sixth.headers['x-envoy-ratelimited']).toBe('true');
    expect(backend.count('limited-0')).toBe(5);
  });

  it('http2MaxRequests 2 for the waypoint is 1 here: of two concurrent slow requests, one overflows', async () => {
    // Slow enough that both are in flight together, even on a loaded machine.
    backend.always({ delayMs: 500 });
    const results = await Promise.all([send(POOLED, '/c0'), send(POOLED, '/c1')]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 503]);
    const overflowed = results.find((r) => r.status === 503)!;
    expect(overflowed.body).toBe(OVERFLOW_BODY);
    expect(overflowed.headers['x-envoy-overloaded']).toBe('true');
    expect(flagsOf(await overflowed.line())).toBe('UO');
    expect(backend.count('pooled-0')).toBe(1);
  });
});
