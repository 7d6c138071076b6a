// Outlier detection through a real waypoint (l7-semantics.md §5.3): with consecutive5xxErrors: 1
// an endpoint answering 500 is ejected at once, traffic goes to the healthy one until
// baseEjectionTime has passed, then the endpoint returns; with every endpoint ejected and no panic,
// 503 `no healthy upstream` (UH).
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Waypoint } from '../../src/waypoint.ts';
import {
  accessLogCapture,
  ControllableBackend,
  flagsOf,
  requester,
} from '../helpers/controllable-backend.ts';
import { id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const WAYPOINT_IP = '127.0.183.100';
const HALF = '127.0.183.1'; // one pod always 500
const DOWN = '127.0.183.2'; // both pods always 500

const BASE_EJECTION_MS = 2_000;

const outlier = (name: string, base: string) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}, namespace: shop }
spec:
  host: ${name}.shop.svc.cluster.local
  trafficPolicy:
    outlierDetection:
      consecutive5xxErrors: 1
      interval: 1s
      baseEjectionTime: ${base}
      maxEjectionPercent: 100
      minHealthPercent: 0
`;

let mesh: TestMesh;
let waypoint: Waypoint;
let backend: ControllableBackend;
const log = accessLogCapture();

beforeAll(async () => {
  mesh = await TestMesh.create();
  const svc = (name: string, vip: string, pods: [string, string][]) =>
    serviceYaml({ name, vip, port: 80, targetPort: 8080, pods: pods.map(([n, ip]) => ({ name: n, ip })) });
  await mesh.writeConfig(
    'mesh.yaml',
    [
      waypointYaml(),
      svc('half', HALF, [
        ['half-good', '127.0.183.11'],
        ['half-bad', '127.0.183.12'],
      ]),
      svc('down', DOWN, [
        ['down-0', '127.0.183.13'],
        ['down-1', '127.0.183.14'],
      ]),
      outlier('half', `${BASE_EJECTION_MS}ms`),
      outlier('down', '30s'),
    ].join('---\n'),
  );
  backend = await ControllableBackend.start(mesh, 8080, [
    { name: 'half-good', ip: '127.0.183.11', identity: id('shop', 'half') },
    { name: 'half-bad', ip: '127.0.183.12', identity: id('shop', 'half') },
    { name: 'down-0', ip: '127.0.183.13', identity: id('shop', 'down') },
    { name: 'down-1', ip: '127.0.183.14', identity: id('shop', 'down') },
  ]);
  backend.script(({ pod }) => (pod === 'half-good' ? {} : { status: 500 }));
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
  prefix: 'outlier',
  client: id('shop', 'sleep'),
});

it('ejects the failing endpoint after its first 500 and brings it back after baseEjectionTime', async () => {
  // Until the bad endpoint is picked once (even odds per request: 40 misses is a 1-in-10^12 draw).
  let ejectedAt = 0;
  for (let i = 0; i < 40 && !ejectedAt; i++) {
    const r = await send(HALF, `/find${i}`);
    if (r.status === 500) ejectedAt = performance.now();
    else expect(r.status).toBe(200);
  }
  expect(ejectedAt).toBeGreaterThan(0);
  expect(backend.count('half-bad')).toBe(1);

  // While ejected: only the healthy endpoint (requests sent well inside the ejection time).
  let sent = 0;
  for (; sent < 20 && performance.now() - ejectedAt < BASE_EJECTION_MS / 2; sent++)
    expect((await send(HALF, `/ejected${sent}`)).status).toBe(200);
  expect(sent).toBeGreaterThan(0);
  expect(backend.count('half-bad')).toBe(1);

  // After baseEjectionTime it is back: it gets a request again (and is ejected again by it).
  await new Promise((r) =>
    setTimeout(r, Math.max(0, ejectedAt + BASE_EJECTION_MS + 100 - performance.now())),
  );
  for (let i = 0; i < 40 && backend.count('half-bad') === 1; i++) await send(HALF, `/back${i}`);
  expect(backend.count('half-bad')).toBe(2);
});

it('answers 503 `no healthy upstream` (UH) once every endpoint is ejected', async () => {
  const statuses: number[] = [];
  let last: Awaited<ReturnType<typeof send>> | undefined;
  for (let i = 0; i < 5; i++) {
    last = await send(DOWN, `/d${i}`);
    statuses.push(last.status);
    if (last.status === 503) break;
  }
  // One 500 from each endpoint ejects it; the third request finds none left.
  expect(statuses).toEqual([500, 500, 503]);
  expect(backend.count('down-0')).toBe(1);
  expect(backend.count('down-1')).toBe(1);
  expect(last!.body).toBe('no healthy upstream');
  expect(flagsOf(await last!.line())).toBe('UH');
});
