// `node-waypoint run --controller` as a user runs it: a child process with certificate files,
// configured by a config stream server in this process (an in-memory SliceSource behind it).
// Addresses: controller 127.3.20.1, waypoint 127.3.20.2, VIP 127.3.21.10, pod 127.3.22.11.
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { KubeDocument } from '../../src/controller/slice-source.ts';
import { type ConfigStreamServer, startConfigStreamServer } from '../../src/controller/stream-server.ts';
import { silentLogger } from '../../src/observe/logger.ts';
import { MemorySliceSource } from '../helpers/memory-slice-source.ts';
import { eventually, getText, id, serviceYaml, spawnCli, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const CONTROLLER = '127.3.20.1';
const docs = (yaml: string): KubeDocument[] => parseAllDocuments(yaml).map((d) => d.toJSON() as KubeDocument);

describe('node-waypoint run --controller', () => {
  let mesh: TestMesh;
  let server: ConfigStreamServer;
  const source = new MemorySliceSource();

  beforeAll(async () => {
    mesh = await TestMesh.create();
    await mesh.pod('127.3.22.11', 9080, TestMesh.echoServer('reviews-a'), id('shop', 'reviews'));
    source.addGateway('shop/waypoint');
    source.put(
      'shop/waypoint',
      ...docs(waypointYaml()),
      ...docs(
        serviceYaml({
          name: 'reviews',
          vip: '127.3.21.10',
          port: 9080,
          pods: [{ name: 'reviews-a', ip: '127.3.22.11' }],
        }),
      ),
    );
    server = await startConfigStreamServer({
      source,
      listen: { host: CONTROLLER, port: 0 },
      credentials: await mesh.credentials(id('istio-system', 'node-waypoint-controller')),
      log: silentLogger,
      metrics: new Registry(),
    });
  });
  afterAll(async () => {
    await mesh.close();
    await server.close();
  });

  it('takes its configuration from the controller (WAYPOINT_CONTROLLER) and serves it', async () => {
    const wp = await mesh.spawnRun({
      config: [],
      hboneIp: '127.3.20.2',
      env: { WAYPOINT_CONTROLLER: `${CONTROLLER}:${server.address.port}` },
    });
    await wp.waitForStderr(/"msg":"controller: connected, full snapshot received"/);
    await eventually(async () => (await getText(wp.admin, '/healthz/ready')).status === 200, 'readiness');
    const dump = JSON.parse((await getText(wp.admin, '/config_dump')).body) as Record<string, unknown>;
    expect(dump.configSource).toMatchObject({
      type: 'controller',
      address: `${CONTROLLER}:${server.address.port}`,
      identity: 'spiffe://cluster.local/ns/istio-system/sa/node-waypoint-controller',
      connected: true,
      version: source.slice('shop/waypoint')!.version,
    });
    expect(Object.keys(dump.services as object)).toEqual(['127.3.21.10:9080']);
    // SIGTERM: the stream ends with the process, which exits 0.
    wp.child.kill('SIGTERM');
    expect(await wp.exited).toBe(0);
    await eventually(() => server.connected === 0, 'the controller sees the stream end');
  });

  it('exits 2 when given both --config and --controller, or a malformed one', async () => {
    const files = await mesh.certFiles(id('shop', 'waypoint'));
    const base = [
      'run',
      '--gateway',
      'shop/waypoint',
      '--cert',
      files.cert,
      '--key',
      files.key,
      '--ca',
      files.ca,
    ];
    const cases: Array<[string[], RegExp]> = [
      [
        [...base, '--config', mesh.configDir, '--controller', 'c:1'],
        /--config and --controller exclude each other/,
      ],
      [[...base, '--controller', 'no-port'], /--controller: expected HOST:PORT/],
      [
        [...base, '--controller', 'c:1', '--controller-identity', 'c'],
        /--controller-identity: expected spiffe:/,
      ],
    ];
    await Promise.all(
      cases.map(async ([args, message]) => {
        const proc = spawnCli(args);
        expect(await proc.exited).toBe(2);
        expect(proc.stderr()).toMatch(message);
      }),
    );
  });
});
