// AuthorizationPolicy on TCP ports (l7-semantics.md §2.8): rules are evaluated without HTTP; an
// ALLOW rule with an HTTP-only field never matches, a DENY rule ignores its HTTP-only fields, and a
// denied connection is closed without a byte.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HboneClient } from '../../src/hbone/client.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const policy = (
  name: string,
  target: string,
  action: string,
  rule: string,
): string => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ${name}
  namespace: shop
spec:
  targetRefs:
    - kind: Service
      group: ""
      name: ${target}
  action: ${action}
  rules:
${rule}`;

const services = [
  { name: 'db-allow', vip: '127.0.110.1', ip: '127.0.111.1' },
  { name: 'db-deny-post', vip: '127.0.110.2', ip: '127.0.111.2' },
  { name: 'db-allow-get', vip: '127.0.110.3', ip: '127.0.111.3' },
  { name: 'db-open', vip: '127.0.110.4', ip: '127.0.111.4' },
];

let mesh: TestMesh;
let waypoint: Waypoint;

/** Sends `ping` through a tunnel; resolves with what came back before the tunnel ended. */
async function exchange(client: HboneClient, vip: string): Promise<string> {
  return TestMesh.ping(client, waypoint.addresses!.hbone, { ip: vip, port: 5432 });
}

describe('AuthorizationPolicy on TCP', () => {
  beforeAll(async () => {
    mesh = await TestMesh.create();
    await mesh.writeConfig(
      'mesh.yaml',
      [
        waypointYaml(),
        ...services.map((s) =>
          serviceYaml({
            name: s.name,
            vip: s.vip,
            port: 5432,
            portName: 'tcp-postgres',
            pods: [{ name: `${s.name}-0`, ip: s.ip }],
          }),
        ),
        policy(
          'allow-sleep',
          'db-allow',
          'ALLOW',
          `    - from:\n        - source:\n            principals: ["cluster.local/ns/shop/sa/sleep"]\n`,
        ),
        policy(
          'deny-post',
          'db-deny-post',
          'DENY',
          `    - to:\n        - operation:\n            methods: ["POST"]\n            ports: ["5432"]\n`,
        ),
        policy(
          'allow-get',
          'db-allow-get',
          'ALLOW',
          `    - to:\n        - operation:\n            methods: ["GET"]\n`,
        ),
      ].join('---\n'),
    );
    for (const s of services) {
      await mesh.pod(
        s.ip,
        5432,
        net.createServer((c) => c.pipe(c)),
        id('shop', s.name),
      );
    }
    const ip = '127.0.110.100';
    waypoint = await mesh.startWaypoint({
      ip: ip,
    });
  });
  afterAll(() => mesh.close());

  it('lets an allowed principal through and closes the tunnel of any other', async () => {
    expect(await exchange(await mesh.hboneClient(id('shop', 'sleep')), '127.0.110.1')).toBe('ping');
    expect(await exchange(await mesh.hboneClient(id('shop', 'intruder')), '127.0.110.1')).toBe('');
  });

  it('applies a DENY rule without its HTTP-only fields, denying all TCP on the port', async () => {
    expect(await exchange(await mesh.hboneClient(id('shop', 'sleep')), '127.0.110.2')).toBe('');
  });

  it('never matches an ALLOW rule that needs HTTP, so the implicit deny applies', async () => {
    expect(await exchange(await mesh.hboneClient(id('shop', 'sleep')), '127.0.110.3')).toBe('');
  });

  it('leaves a TCP service without policies open', async () => {
    expect(await exchange(await mesh.hboneClient(id('shop', 'intruder')), '127.0.110.4')).toBe('ping');
  });
});
