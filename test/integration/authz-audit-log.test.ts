// AUDIT AuthorizationPolicy marks the request for the access log (l7-semantics.md §2.2, §5.8; Istio
// sets Envoy's access_log_hint on an AUDIT match): logged even in the default `errors` mode, the
// JSON line naming the rule (`audit: ns[NS]-policy[NAME]-rule[I]`); never in `off`.
// Addresses: waypoints 127.0.140.2-4; VIPs 127.0.141.N:8080; pods 127.0.142.N:8080.
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AccessLogEncoding, AccessLogMode } from '../../src/observe/access-log.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';
import { until } from '../helpers/until.ts';

const policy = (name: string, target: string, dryRun: boolean): string => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ${name}
  namespace: shop
${dryRun ? '  annotations:\n    istio.io/dry-run: "true"\n' : ''}spec:
  targetRefs:
    - kind: Service
      group: ""
      name: ${target}
  action: AUDIT
  rules:
    - to: [{operation: {methods: ["POST"]}}]
    - to: [{operation: {paths: ["/audit/*"]}}]
`;

let mesh: TestMesh;

async function start(
  ip: string,
  mode: AccessLogMode,
  encoding: AccessLogEncoding = 'text',
): Promise<{ waypoint: Waypoint; lines: string[] }> {
  const lines: string[] = [];
  const out = new PassThrough();
  out.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
  const waypoint = await mesh.startWaypoint({
    ip: ip,
    accessLog: mode,
    accessLogStream: out,
    accessLogEncoding: encoding,
  });
  return { waypoint, lines };
}

async function get(w: Waypoint, vip: string, path: string): Promise<number> {
  const client = await mesh.hboneClient(id('shop', 'sleep'));
  const pool = mesh.httpPool(client, w.addresses!.hbone, { ip: vip, port: 8080 });
  const res = await pool.request({ method: 'GET', path });
  await res.body.text();
  return res.statusCode;
}

/** Waits until the access log has `n` lines (it is written after the response completes). */
function logged(lines: string[], n: number): Promise<void> {
  return until(`${n} access log lines`, () => lines.length >= n);
}

/**
 * Requests are sequential: once a later request that is always logged (an AUDIT match, errors mode)
 * has its line, the request before it has been reported, or never will be.
 */
async function reportedUpTo(w: { waypoint: Waypoint; lines: string[] }, marker: string): Promise<void> {
  expect(await get(w.waypoint, '127.0.141.1', `/audit/${marker}`)).toBe(200);
  await until(`the ${marker} line`, () => w.lines.some((l) => l.includes(`/audit/${marker} `)));
}

describe('AUDIT and the access log', () => {
  let errors: { waypoint: Waypoint; lines: string[] };
  let off: { waypoint: Waypoint; lines: string[] };
  let json: { waypoint: Waypoint; lines: string[] };

  beforeAll(async () => {
    mesh = await TestMesh.create();
    await mesh.writeConfig(
      'mesh.yaml',
      [
        waypointYaml(),
        serviceYaml({
          name: 'audited',
          vip: '127.0.141.1',
          port: 8080,
          pods: [{ name: 'a-0', ip: '127.0.142.1' }],
        }),
        serviceYaml({
          name: 'shadow',
          vip: '127.0.141.2',
          port: 8080,
          pods: [{ name: 's-0', ip: '127.0.142.2' }],
        }),
        policy('audit-it', 'audited', false),
        policy('audit-dry', 'shadow', true),
      ].join('---\n'),
    );
    await mesh.pod('127.0.142.1', 8080, TestMesh.echoServer('a-0'), id('shop', 'audited'));
    await mesh.pod('127.0.142.2', 8080, TestMesh.echoServer('s-0'), id('shop', 'shadow'));
    errors = await start('127.0.140.2', 'errors');
    off = await start('127.0.140.3', 'off');
    json = await start('127.0.140.4', 'errors', 'json');
  });
  afterAll(() => mesh.close());

  it('logs a successful request an enforced AUDIT rule matched, in errors mode, naming the rule', async () => {
    expect(await get(errors.waypoint, '127.0.141.1', '/audit/one')).toBe(200);
    await logged(errors.lines, 1);
    expect(errors.lines).toHaveLength(1);
    const line = errors.lines[0]!;
    expect(line).toContain('"GET /audit/one HTTP/1.1" 200 - via_upstream');
    // Istio's format to the last field (the route), nothing after it.
    expect(line.endsWith(' - default')).toBe(true);
  });

  it('names the AUDIT rule in the JSON access log', async () => {
    expect(await get(json.waypoint, '127.0.141.1', '/audit/four')).toBe(200);
    await logged(json.lines, 1);
    expect(json.lines).toHaveLength(1);
    expect(JSON.parse(json.lines[0]!)).toMatchObject({
      method: 'GET',
      path: '/audit/four',
      response_code: 200,
      response_code_details: 'via_upstream',
      route_name: 'default',
      waypoint_reason: 'via_upstream',
      audit: 'ns[shop]-policy[audit-it]-rule[1]',
    });
  });

  it('does not log a successful request no AUDIT rule matched', async () => {
    const before = errors.lines.length;
    expect(await get(errors.waypoint, '127.0.141.1', '/plain')).toBe(200);
    await reportedUpTo(errors, 'marker-1');
    expect(errors.lines).toHaveLength(before + 1);
    expect(errors.lines.filter((l) => l.includes('/plain'))).toEqual([]);
  });

  it('does not log for a dry-run AUDIT policy', async () => {
    const before = errors.lines.length;
    expect(await get(errors.waypoint, '127.0.141.2', '/audit/two')).toBe(200);
    await reportedUpTo(errors, 'marker-2');
    expect(errors.lines).toHaveLength(before + 1);
    expect(errors.lines.filter((l) => l.includes('/audit/two'))).toEqual([]);
  });

  it('logs nothing in off mode, AUDIT or not', async () => {
    expect(await get(off.waypoint, '127.0.141.1', '/audit/three')).toBe(200);
    // Off mode has no line to wait for: the same request through the errors-mode waypoint, logged,
    // shows the time a line takes has passed.
    await reportedUpTo(errors, 'three');
    expect(off.lines).toHaveLength(0);
  });
});
