// Authorization seen from outside a running waypoint: waypoint_authz_decisions_total after real
// requests (HTTP and TCP), and POST /debug/explain on the admin port, on the snapshot in force.
// Addresses: waypoint 127.0.130.2, VIPs 127.0.131.N, pods 127.0.132.N.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Waypoint } from '../../src/waypoint.ts';
import {
  curl,
  eventually,
  getText,
  id,
  metricValue,
  serviceYaml,
  TestMesh,
  waypointYaml,
} from '../helpers/mesh.ts';

const WAYPOINT_IP = '127.0.130.2';
const SLEEP = id('shop', 'sleep');
const OTHER = id('other', 'client');

const policy = (name: string, spec: string, annotations = ''): string => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ${name}
  namespace: shop${annotations}
spec:
${spec}`;

let mesh: TestMesh;
let waypoint: Waypoint;

beforeAll(async () => {
  mesh = await TestMesh.create();
  await mesh.writeConfig(
    'mesh.yaml',
    [
      waypointYaml(),
      serviceYaml({
        name: 'api',
        vip: '127.0.131.10',
        port: 8080,
        pods: [{ name: 'api-a', ip: '127.0.132.10' }],
      }),
      serviceYaml({
        name: 'db',
        vip: '127.0.131.11',
        port: 5432,
        portName: 'tcp-db',
        pods: [{ name: 'db-a', ip: '127.0.132.11' }],
      }),
      policy(
        'api-allow',
        '  targetRefs: [{kind: Service, group: "", name: api}]\n  rules:\n    - to: [{operation: {methods: ["GET"]}}]\n',
      ),
      policy(
        'api-shadow',
        '  targetRefs: [{kind: Service, group: "", name: api}]\n  action: DENY\n  rules:\n    - to: [{operation: {paths: ["/shadow"]}}]\n',
        '\n  annotations:\n    istio.io/dry-run: "true"',
      ),
      policy(
        'api-audit',
        '  targetRefs: [{kind: Service, group: "", name: api}]\n  action: AUDIT\n  rules:\n    - to: [{operation: {paths: ["/audited"]}}]\n',
      ),
      policy(
        'db-allow',
        '  targetRefs: [{kind: Service, group: "", name: db}]\n  rules:\n    - from: [{source: {principals: ["cluster.local/ns/shop/sa/sleep"]}}]\n',
      ),
    ].join('---\n'),
  );
  await mesh.pod('127.0.132.10', 8080, TestMesh.echoServer('api-a'), id('shop', 'api'));
  const tcpEcho = net.createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  await mesh.pod('127.0.132.11', 5432, tcpEcho, id('shop', 'db'));
  waypoint = await mesh.startWaypoint({
    ip: WAYPOINT_IP,
  });
});
afterAll(() => mesh.close());

async function request(as: string, method: string, path: string): Promise<number> {
  const client = await mesh.hboneClient(as);
  const pool = mesh.httpPool(client, waypoint.addresses!.hbone, { ip: '127.0.131.10', port: 8080 });
  try {
    const res = await pool.request({ method: method as 'GET', path });
    await res.body.text();
    return res.statusCode;
  } finally {
    await pool.close();
    client.close();
  }
}

/** Opens a TCP tunnel to db, writes a line and returns what came back ('' when the tunnel was closed). */
async function tcpExchange(as: string): Promise<string> {
  const client = await mesh.hboneClient(as);
  try {
    const stream = await TestMesh.tunnel(client, waypoint.addresses!.hbone, {
      ip: '127.0.131.11',
      port: 5432,
    });
    return await new Promise<string>((resolve) => {
      let got = '';
      stream.on('data', (d: Buffer) => {
        got += d.toString();
        if (got === 'ping') stream.end();
      });
      stream.on('close', () => resolve(got));
      stream.on('error', () => resolve(got));
      stream.write('ping');
    });
  } finally {
    client.close();
  }
}

const metrics = async () => (await getText(waypoint.addresses!.metrics, '/stats/prometheus')).body;
const decisions = (text: string, labels: Record<string, string>) =>
  metricValue(text, 'waypoint_authz_decisions_total', labels);

describe('waypoint_authz_decisions_total', () => {
  it('counts allows, denies, dry-run and audit results by policy, for HTTP and TCP', async () => {
    expect(await request(SLEEP, 'GET', '/')).toBe(200);
    expect(await request(SLEEP, 'POST', '/')).toBe(403);
    expect(await request(SLEEP, 'GET', '/shadow')).toBe(200);
    expect(await request(SLEEP, 'GET', '/audited')).toBe(200);
    expect(await tcpExchange(SLEEP)).toBe('ping');
    expect(await tcpExchange(OTHER)).toBe('');
    const text = await eventually(async () => {
      const t = await metrics();
      return decisions(t, { policy: 'none', action: 'ALLOW', decision: 'deny' }) >= 2 ? t : undefined;
    }, 'the TCP deny to be counted');
    expect(decisions(text, { policy: 'shop/api-allow', action: 'ALLOW', decision: 'allow' })).toBe(3);
    // POST: the implicit deny (HTTP), and the TCP connection from another principal.
    expect(decisions(text, { policy: 'none', action: 'ALLOW', decision: 'deny' })).toBe(2);
    expect(decisions(text, { policy: 'shop/api-shadow', action: 'DENY', decision: 'would_deny' })).toBe(1);
    expect(decisions(text, { policy: 'none', action: 'DENY', decision: 'would_allow' })).toBe(3);
    expect(decisions(text, { policy: 'shop/api-audit', action: 'AUDIT', decision: 'audit' })).toBe(1);
    expect(decisions(text, { policy: 'shop/db-allow', action: 'ALLOW', decision: 'allow' })).toBe(1);
    // Labels are policy names only: no path, host or principal.
    for (const line of text.split('\n').filter((l) => l.startsWith('waypoint_authz_decisions_total{')))
      expect([...line.matchAll(/(\w+)="/g)].map((m) => m[1])).toEqual(['policy', 'action', 'decision']);
  });
});

describe('POST /debug/explain', () => {
  const post = (body: string) =>
    curl(waypoint.addresses!.admin, '/debug/explain', {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
    });

  it('explains a request on the snapshot in force, without counting it', async () => {
    const before = decisions(await metrics(), {});
    const res = await post(JSON.stringify({ from: SLEEP, to: 'api.shop:8080', method: 'DELETE', path: '/' }));
    expect(res.status).toBe(200);
    const j = JSON.parse(res.body);
    expect(j.verdict).toBe('denied: rbac_access_denied_matched_policy[none]');
    expect(j.allowed).toBe(false);
    expect(j.destination).toMatchObject({
      kind: 'service',
      name: 'shop/api',
      address: '127.0.131.10',
      port: 8080,
    });
    expect(j.policies.map((p: { policy: string }) => p.policy)).toEqual([
      'shop/api-shadow',
      'shop/api-allow',
      'shop/api-audit',
    ]);
    const ok = JSON.parse((await post(JSON.stringify({ from: SLEEP, to: '127.0.131.10:8080' }))).body);
    expect(ok.verdict).toBe('allowed');
    expect(decisions(await metrics(), {})).toBe(before);
  });

  it('answers 400 for bad input, 404 for a destination not served, 413 over 64 KiB', async () => {
    expect((await post('not json')).status).toBe(400);
    const noFrom = await post(JSON.stringify({ to: 'api.shop:8080' }));
    expect(noFrom.status).toBe(400);
    expect(JSON.parse(noFrom.body).error).toBe('from: required');
    const nope = await post(JSON.stringify({ from: SLEEP, to: 'nope.shop:80' }));
    expect(nope.status).toBe(404);
    const big = await post(
      JSON.stringify({ from: SLEEP, to: 'api.shop:8080', path: `/${'x'.repeat(70_000)}` }),
    );
    expect(big.status).toBe(413);
    expect((await getText(waypoint.addresses!.admin, '/healthz/ready')).status).toBe(200);
  });
});
