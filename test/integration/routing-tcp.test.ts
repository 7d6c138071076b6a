// TCP routing at the waypoint (l7-semantics.md §4.1): a TCPRoute or a VirtualService `tcp` rule
// splits the connections to a TCP Service port by weight across other Services; a connection
// whose backend does not resolve is closed. Each pod answers one message with its name, so a
// tunnel's answer says where the waypoint sent it.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HboneClient } from '../../src/hbone/client.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

let mesh: TestMesh;
let waypoint: Waypoint;
let client: HboneClient;

const PORT = 5000;
/** name → [VIP, pod IP, port name, appProtocol]. */
const SERVICES: Record<string, readonly [string, string, string, string | undefined]> = {
  front: ['127.0.196.1', '127.0.197.1', 'tcp-front', undefined],
  'tcp-a': ['127.0.196.2', '127.0.197.2', 'db', 'tcp'],
  'tcp-b': ['127.0.196.3', '127.0.197.3', 'db', 'tcp'],
  'vs-front': ['127.0.196.4', '127.0.197.4', 'tcp-vs', undefined],
  'bad-front': ['127.0.196.5', '127.0.197.5', 'tcp-bad', undefined],
  'vs-bad-front': ['127.0.196.6', '127.0.197.6', 'tcp-vs-bad', undefined],
};
const VIP = (name: string) => SERVICES[name]![0];

const ROUTES = `apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: { name: front, namespace: shop }
spec:
  parentRefs: [{ group: "", kind: Service, name: front, port: ${PORT} }]
  rules:
    - backendRefs:
        - { name: tcp-a, port: ${PORT}, weight: 75 }
        - { name: tcp-b, port: ${PORT}, weight: 25 }
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: { name: bad-front, namespace: shop }
spec:
  parentRefs: [{ group: "", kind: Service, name: bad-front, port: ${PORT} }]
  rules:
    - backendRefs: [{ name: missing, port: ${PORT} }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: vs-front, namespace: shop }
spec:
  hosts: [vs-front]
  tcp:
    - route:
        - { destination: { host: tcp-a, port: { number: ${PORT} } }, weight: 25 }
        - { destination: { host: tcp-b.shop.svc.cluster.local, port: { number: ${PORT} } }, weight: 75 }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: vs-bad-front, namespace: shop }
spec:
  hosts: [vs-bad-front]
  tcp:
    - route: [{ destination: { host: missing, port: { number: ${PORT} } } }]
`;

/** Answers the first bytes of each connection with its name, then closes. */
function namedServer(name: string): net.Server {
  return net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => socket.end(name));
  });
}

beforeAll(async () => {
  mesh = await TestMesh.create();
  await mesh.writeConfig(
    'mesh.yaml',
    [
      waypointYaml(),
      ...Object.entries(SERVICES).map(([name, [vip, pod, portName, appProtocol]]) =>
        serviceYaml({ name, vip, port: PORT, portName, appProtocol, pods: [{ name, ip: pod }] }),
      ),
      ROUTES,
    ].join('---\n'),
  );
  for (const [name, [, pod]] of Object.entries(SERVICES))
    await mesh.pod(pod, PORT, namedServer(name), id('shop', name));
  const ip = '127.0.196.100';
  waypoint = await mesh.startWaypoint({
    ip: ip,
  });
  client = await mesh.hboneClient(id('shop', 'sleep'));
});
afterAll(() => mesh.close());

/** Opens a tunnel to the Service, says hello, and resolves with the answer ('' if closed unanswered). */
async function hello(service: string): Promise<string> {
  let stream: Awaited<ReturnType<typeof TestMesh.tunnel>>;
  try {
    stream = await TestMesh.tunnel(client, waypoint.addresses!.hbone, { ip: VIP(service), port: PORT });
  } catch {
    return '';
  }
  return new Promise((resolve) => {
    let got = '';
    const timer = setTimeout(() => stream.destroy(), 5_000);
    stream.on('data', (d: Buffer) => {
      got += d.toString();
    });
    stream.on('end', () => stream.end());
    stream.on('error', () => {});
    stream.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
    stream.write('hello');
  });
}

async function shares(service: string, n: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const who = await hello(service);
    counts[who] = (counts[who] ?? 0) + 1;
  }
  return counts;
}

describe('TCP routing', () => {
  it('TCPRoute splits connections by weight across two Services', async () => {
    const counts = await shares('front', 300);
    expect((counts['tcp-a'] ?? 0) + (counts['tcp-b'] ?? 0)).toBe(300);
    expect((counts['tcp-a'] ?? 0) / 300).toBeGreaterThan(0.65);
    expect((counts['tcp-a'] ?? 0) / 300).toBeLessThan(0.85);
  });

  it('VirtualService tcp routes split connections by weight', async () => {
    const counts = await shares('vs-front', 300);
    expect((counts['tcp-a'] ?? 0) + (counts['tcp-b'] ?? 0)).toBe(300);
    expect((counts['tcp-b'] ?? 0) / 300).toBeGreaterThan(0.65);
    expect((counts['tcp-b'] ?? 0) / 300).toBeLessThan(0.85);
  });

  it('closes the tunnel when the TCPRoute backend does not resolve', async () => {
    expect(await hello('bad-front')).toBe('');
  });

  it('closes the tunnel when the VirtualService tcp destination does not resolve', async () => {
    expect(await hello('vs-bad-front')).toBe('');
  });
});
