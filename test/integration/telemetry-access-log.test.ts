// The Telemetry API's accessLogging on a real waypoint: a namespace-wide Telemetry turns the log on
// for every request (the default mode logs only errors), targetRefs to a Service turns it off for that
// Service even for errors, and removing the resources gives the --access-log mode back.
// Addresses: waypoint 127.0.165.2; VIPs 127.0.165.10-11; pods 127.0.165.20-21.
import http from 'node:http';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Waypoint } from '../../src/waypoint.ts';
import { id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const LOUD = { ip: '127.0.165.10', port: 8080 };
const QUIET = { ip: '127.0.165.11', port: 8080 };

const telemetry = `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: log-all, namespace: shop }
spec:
  accessLogging: [{ providers: [{ name: envoy }] }]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: quiet, namespace: shop }
spec:
  targetRefs: [{ kind: Service, group: "", name: quiet }]
  accessLogging: [{ disabled: true }]
`;

let mesh: TestMesh;
let waypoint: Waypoint;
const lines: string[] = [];

async function get(vip: { ip: string; port: number }, path: string): Promise<number> {
  const client = await mesh.hboneClient(id('shop', 'sleep'));
  const res = await mesh.httpPool(client, waypoint.addresses!.hbone, vip).request({ method: 'GET', path });
  await res.body.text();
  return res.statusCode;
}

/** The lines logged for `path`, once the exchange has been reported (requests are sequential). */
async function loggedFor(path: string, marker: string): Promise<string[]> {
  // The marker request is logged whatever the configuration (a 500 from the loud Service is an error,
  // and the loud Service is never silenced): once its line is in, the request before it was reported.
  expect(await get(LOUD, marker)).toBe(500);
  for (let i = 0; i < 200 && !lines.some((l) => l.includes(marker)); i++)
    await new Promise((r) => setTimeout(r, 10));
  return lines.filter((l) => l.includes(`"GET ${path} `));
}

beforeAll(async () => {
  mesh = await TestMesh.create();
  await mesh.writeConfig(
    'mesh.yaml',
    [
      waypointYaml(),
      serviceYaml({ name: 'loud', vip: LOUD.ip, port: 8080, pods: [{ name: 'loud-0', ip: '127.0.165.20' }] }),
      serviceYaml({
        name: 'quiet',
        vip: QUIET.ip,
        port: 8080,
        pods: [{ name: 'quiet-0', ip: '127.0.165.21' }],
      }),
    ].join('---\n'),
  );
  // Answers 500 on /fail*, 200 otherwise.
  const app = () =>
    http.createServer((req, res) => {
      res.writeHead(req.url?.startsWith('/fail') || req.url?.startsWith('/marker') ? 500 : 200);
      res.end();
    });
  await mesh.pod('127.0.165.20', 8080, app(), id('shop', 'loud'));
  await mesh.pod('127.0.165.21', 8080, app(), id('shop', 'quiet'));
  const out = new PassThrough();
  out.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
  waypoint = await mesh.startWaypoint({ ip: '127.0.165.2', accessLog: 'errors', accessLogStream: out });
});
afterAll(() => mesh?.close());

it('without Telemetry, the --access-log mode: errors only', async () => {
  expect(await get(LOUD, '/ok-1')).toBe(200);
  expect(await loggedFor('/ok-1', '/marker-1')).toEqual([]);
});

it('a namespace Telemetry logs every request; a Service-targeted one silences that Service, errors too', async () => {
  await mesh.writeConfig('telemetry.yaml', telemetry);
  await waypoint.reload();
  expect(waypoint.snapshot?.accessLogging?.waypoint).toMatchObject({
    enabled: true,
    source: 'Telemetry shop/log-all',
  });
  expect(await get(LOUD, '/ok-2')).toBe(200);
  expect(await loggedFor('/ok-2', '/marker-2')).toHaveLength(1);
  expect(await get(QUIET, '/fail-3')).toBe(500);
  expect(await loggedFor('/fail-3', '/marker-3')).toEqual([]);
});

it('removing the Telemetry resources gives the mode back', async () => {
  await mesh.writeConfig('telemetry.yaml', '');
  await waypoint.reload();
  expect(waypoint.snapshot?.accessLogging).toBeUndefined();
  expect(await get(QUIET, '/fail-4')).toBe(500);
  expect(await loggedFor('/fail-4', '/marker-4')).toHaveLength(1);
  expect(await get(LOUD, '/ok-5')).toBe(200);
  expect(await loggedFor('/ok-5', '/marker-5')).toEqual([]);
});
