// CUSTOM AuthorizationPolicy on TCP ports (Envoy's network ext_authz, gRPC providers only) and the
// mesh config reload, through a real waypoint and a real gRPC Authorization/Check server.
// Addresses: provider 127.0.145.10; VIPs 127.0.146.N:5432; pods 127.0.147.N:5432; a dead provider
// 127.0.148.9; waypoint 127.0.149.2.
import { mkdtemp, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMeshConfig } from '../../filters/authz/mesh-config.ts';
import { createLogger } from '../../src/observe/logger.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { type SeenCheck, startGrpcAuthz } from '../helpers/ext-authz-server.ts';
import { id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';
import { until } from '../helpers/until.ts';

const GRPC_IP = '127.0.145.10';
const DEAD_IP = '127.0.148.9';
const SERVICES = [
  { name: 'db-grpc', vip: '127.0.146.1', ip: '127.0.147.1', provider: 'grpc' },
  { name: 'db-http', vip: '127.0.146.2', ip: '127.0.147.2', provider: 'http' },
  { name: 'db-moving', vip: '127.0.146.3', ip: '127.0.147.3', provider: 'moving' },
] as const;

let mesh: TestMesh;
/** The waypoint's own log: the mesh config reloads it reports. */
const logLines: string[] = [];
let waypoint: Waypoint;
let seen: SeenCheck[];
let grpcPort: number;
let meshConfigFile: string;

const custom = (name: string, target: string, provider: string): string => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ${name}
  namespace: shop
spec:
  targetRefs:
    - kind: Service
      group: ""
      name: ${target}
  action: CUSTOM
  provider:
    name: ${provider}
  rules:
    - to: [{operation: {ports: ["5432"]}}]
`;

const meshConfig = (moving: string): string => `extensionProviders:
  - name: grpc
    envoyExtAuthzGrpc: {service: ${GRPC_IP}, port: ${grpcPort}, timeout: 5s}
  - name: http
    envoyExtAuthzHttp: {service: ${GRPC_IP}, port: ${grpcPort}}
  - name: moving
    envoyExtAuthzGrpc: ${moving}
`;

/** Sends `ping` through a tunnel as `sa`; resolves with what came back before the tunnel ended. */
async function exchange(sa: string, vip: string): Promise<string> {
  const client = await mesh.hboneClient(id('shop', sa));
  return TestMesh.ping(client, waypoint.addresses!.hbone, { ip: vip, port: 5432 });
}

/** Retries `exchange` until it returns `want` (the mesh config reload is asynchronous). */
async function eventually(sa: string, vip: string, want: string): Promise<string> {
  let got = '';
  for (let i = 0; i < 40; i++) {
    got = await exchange(sa, vip);
    if (got === want) return got;
    await new Promise((r) => setTimeout(r, 100));
  }
  return got;
}

beforeAll(async () => {
  mesh = await TestMesh.create();
  const g = await startGrpcAuthz(GRPC_IP, (c) => c.principal.endsWith('/sa/sleep'));
  mesh.onClose(() => g.server.forceShutdown());
  seen = g.seen;
  grpcPort = g.port;
  await mesh.writeConfig(
    'mesh.yaml',
    [
      waypointYaml(),
      ...SERVICES.flatMap((s) => [
        serviceYaml({
          name: s.name,
          vip: s.vip,
          port: 5432,
          portName: 'tcp-postgres',
          pods: [{ name: `${s.name}-0`, ip: s.ip }],
        }),
        custom(`${s.name}-custom`, s.name, s.provider),
      ]),
    ].join('---\n'),
  );
  for (const s of SERVICES)
    await mesh.pod(
      s.ip,
      5432,
      net.createServer((c) => c.pipe(c)),
      id('shop', s.name),
    );
  const dir = await mkdtemp(join(tmpdir(), 'waypoint-meshcfg-'));
  meshConfigFile = join(dir, 'mesh.yaml');
  await writeFile(meshConfigFile, meshConfig(`{service: ${DEAD_IP}, port: 9, timeout: 1s}`));
  waypoint = await mesh.startWaypoint({
    ip: '127.0.149.2',
    log: createLogger('info', (line) => logLines.push(line)),
    extensionProviders: await loadMeshConfig(meshConfigFile),
    meshConfigPath: meshConfigFile,
  });
});
afterAll(() => mesh.close());

describe('CUSTOM on TCP: network ext_authz', () => {
  it('asks the gRPC provider about the connection and splices what it allows', async () => {
    expect(await exchange('sleep', '127.0.146.1')).toBe('ping');
    const check = seen.at(-1)!;
    expect(check.principal).toBe('spiffe://cluster.local/ns/shop/sa/sleep');
    expect(check.destination).toBe('127.0.146.1:5432');
    expect(check.source).toMatch(/^127\.\d+\.\d+\.\d+:\d+$/);
    expect(check.http).toBe(false);
  });

  it('closes the tunnel without a byte when the provider denies', async () => {
    const before = seen.length;
    expect(await exchange('intruder', '127.0.146.1')).toBe('');
    expect(seen.length).toBe(before + 1);
    expect(seen.at(-1)!.principal).toBe('spiffe://cluster.local/ns/shop/sa/intruder');
  });

  it('denies a matching rule whose provider is HTTP, without calling it', async () => {
    const before = seen.length;
    expect(await exchange('sleep', '127.0.146.2')).toBe('');
    expect(seen.length).toBe(before);
    expect(
      waypoint.snapshot!.messages.some(
        (m) => m.message.includes('db-http-custom') && m.message.includes('is HTTP'),
      ),
    ).toBe(true);
  });

  it('denies when the provider is unreachable and not failOpen', async () => {
    expect(await exchange('sleep', '127.0.146.3')).toBe('');
  });
});

describe('mesh config reload', () => {
  it('applies a changed failOpen without a restart', async () => {
    await writeFile(
      meshConfigFile,
      meshConfig(`{service: ${DEAD_IP}, port: 9, timeout: 1s, failOpen: true}`),
    );
    expect(await eventually('intruder', '127.0.146.3', 'ping')).toBe('ping');
  });

  it('applies a changed provider address without a restart', async () => {
    await writeFile(meshConfigFile, meshConfig(`{service: ${GRPC_IP}, port: ${grpcPort}}`));
    expect(await eventually('intruder', '127.0.146.3', '')).toBe('');
    expect(seen.at(-1)!.destination).toBe('127.0.146.3:5432');
    expect(await exchange('sleep', '127.0.146.3')).toBe('ping');
  });

  it('keeps the providers in force when the file turns bad', async () => {
    const version = waypoint.snapshot!.version;
    await writeFile(meshConfigFile, 'extensionProviders: [{name: moving, envoyExtAuthzGrpc: {port: 0}}]\n');
    await until('the reload refused', () => logLines.some((l) => l.includes('mesh config: reload failed')));
    expect(waypoint.snapshot!.version).toBe(version);
    expect(await exchange('intruder', '127.0.146.3')).toBe('');
    expect(await exchange('sleep', '127.0.146.3')).toBe('ping');
  });
});
