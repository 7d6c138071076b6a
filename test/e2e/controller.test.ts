// `node-waypoint controller` and `node-waypoint run --controller` as a cluster runs them, both child
// processes: the controller watches the fake API server through a kubeconfig naming a plain http://
// server, and the waypoint takes its configuration from the controller's stream.
// Addresses: API server 127.3.40.1, controller 127.3.40.2, waypoint 127.3.40.3, VIP 127.3.41.10,
// pods 127.3.42.11 and .12.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { FakeKubeApi, type KubeObject } from '../helpers/fake-kube-api.ts';
import {
  type CliProcess,
  concurrencyOf,
  eventually,
  getText,
  id,
  parseHostPort,
  serviceYaml,
  spawnCli,
  TestMesh,
  type WaypointProcess,
  waypointYaml,
} from '../helpers/mesh.ts';

const VIP = '127.3.41.10';
const POD_A = '127.3.42.11';
const POD_B = '127.3.42.12';
const objects = (yaml: string): KubeObject[] => parseAllDocuments(yaml).map((d) => d.toJSON() as KubeObject);

interface RunningController {
  proc: CliProcess;
  listen: string;
  health: { ip: string; port: number };
}

describe('node-waypoint controller → run --controller', () => {
  let mesh: TestMesh;
  let api: FakeKubeApi;
  let kubeconfig: string;
  let controller: RunningController;
  let wp: WaypointProcess;
  let pool: Pool;

  async function startController(listen = '127.3.40.2:0'): Promise<RunningController> {
    const files = await mesh.certFiles(id('istio-system', 'node-waypoint-controller'));
    const proc = spawnCli(
      [
        'controller',
        '--kubeconfig',
        kubeconfig,
        '--listen',
        listen,
        '--health',
        '127.3.40.2:0',
        '--cert',
        files.cert,
        '--key',
        files.key,
        '--ca',
        files.ca,
      ],
      { register: (fn) => mesh.onClose(fn), env: { WAYPOINT_LOG_LEVEL: 'info' } },
    );
    const [line] = await proc.waitForStderr(/\{[^\n]*"msg":"controller: started"[^\n]*\}/, 30_000);
    const parsed = JSON.parse(line) as { listen: string; health: string };
    const running = { proc, listen: parsed.listen, health: parseHostPort(parsed.health) };
    await eventually(
      async () => (await getText(running.health, '/healthz/ready')).status === 200,
      'controller ready',
      30_000,
    );
    return running;
  }

  const dump = async (): Promise<{ services: Record<string, unknown>; source: { version: string } }> =>
    JSON.parse((await getText(wp.admin, '/config_dump')).body);
  const podOf = async (): Promise<string> => {
    const res = await pool.request({ method: 'GET', path: '/' });
    const body = await res.body.text();
    return res.statusCode === 200 ? (JSON.parse(body) as { pod: string }).pod : `HTTP ${res.statusCode}`;
  };
  /** Waits until the waypoint applied a newer version than `since` and check holds. */
  const applied = <T>(check: () => Promise<T | false>, what: string): Promise<T> =>
    eventually(check, what, 10_000);

  beforeAll(async () => {
    mesh = await TestMesh.create();
    await mesh.pod(POD_A, 9080, TestMesh.echoServer('reviews-a'), id('shop', 'reviews'));
    await mesh.pod(POD_B, 9080, TestMesh.echoServer('reviews-b'), id('shop', 'reviews'));
    api = new FakeKubeApi();
    const server = await api.listen('127.3.40.1', 0);
    mesh.onClose(() => api.close());
    const gatewayClass: KubeObject = {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'GatewayClass',
      metadata: { name: 'istio-waypoint' },
      spec: { controllerName: 'istio.io/mesh-controller' },
    };
    for (const o of [
      gatewayClass,
      ...objects(waypointYaml()),
      ...objects(
        serviceYaml({ name: 'reviews', vip: VIP, port: 9080, pods: [{ name: 'reviews-a', ip: POD_A }] }),
      ),
    ]) {
      api.create(o);
    }
    kubeconfig = join(mesh.dir, 'kubeconfig');
    await writeFile(
      kubeconfig,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: ${server}\nusers:\n- name: none\n  user: {}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: none\ncurrent-context: fake\n`,
    );
    controller = await startController();
    wp = await mesh.spawnRun({
      config: [],
      hboneIp: '127.3.40.3',
      env: { WAYPOINT_CONTROLLER: controller.listen },
    });
    await eventually(
      async () => (await getText(wp.admin, '/healthz/ready')).status === 200,
      'waypoint ready',
      10_000,
    );
    const client = await mesh.hboneClient(id('shop', 'productpage'));
    pool = mesh.httpPool(client, wp.hbone, { ip: VIP, port: 9080 });
  }, 60_000);
  afterAll(async () => {
    await mesh.close();
  });

  it('serves the Service the controller found, and follows a pod whose IP changes', async () => {
    expect(await podOf()).toBe('reviews-a');
    const pod = api.get('v1', 'Pod', 'shop', 'reviews-a') as KubeObject;
    api.update({ ...pod, status: { ...(pod.status as object), podIP: POD_B } });
    await applied(async () => (await podOf()) === 'reviews-b', 'traffic on the new pod IP');
  });

  it('stops serving a namespace when it loses istio.io/use-waypoint, and serves it again when labelled', async () => {
    const ns = api.get('v1', 'Namespace', '', 'shop') as KubeObject;
    api.update({ ...ns, metadata: { ...ns.metadata, labels: {} } });
    await applied(async () => Object.keys((await dump()).services).length === 0, 'no service bound');
    api.update(ns);
    await applied(
      async () => Object.keys((await dump()).services).includes(`${VIP}:9080`),
      'service bound again',
    );
  });

  it('applies an AuthorizationPolicy, then lifts it when deleted', async () => {
    const policy: KubeObject = {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'deny-all', namespace: 'shop' },
      spec: {
        targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint' }],
        action: 'DENY',
        rules: [{}],
      },
    };
    api.create(policy);
    await applied(async () => (await podOf()) === 'HTTP 403', 'denied');
    api.delete(policy);
    await applied(async () => (await podOf()).startsWith('reviews'), 'allowed again');
  });

  it('rejects an invalid HTTPRoute alone, with the NACK message in the controller log', async () => {
    api.create({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'broken', namespace: 'shop' },
      spec: {
        parentRefs: [{ group: '', kind: 'Service', name: 'reviews', port: 9080 }],
        rules: [{ backendRefs: [{ name: 'reviews', port: 70000 }] }],
      },
    });
    await controller.proc.waitForStderr(
      /NACK: waypoint rejected a resource[^\n]*HTTPRoute shop\/broken/,
      10_000,
    );
    expect((await podOf()).startsWith('reviews')).toBe(true);
  });

  it('rides out a 410 storm: every watch re-lists and the next change still arrives', async () => {
    for (let i = 0; i < 10; i++) {
      api.compact();
      api.goneOpenWatches();
      await eventually(() => api.openWatches >= 17, 'watches back');
    }
    const pod = api.get('v1', 'Pod', 'shop', 'reviews-a') as KubeObject;
    api.update({ ...pod, status: { ...(pod.status as object), podIP: POD_A } });
    await applied(async () => (await podOf()) === 'reviews-a', 'change after the storm');
    const metrics = (await getText(controller.health, '/metrics')).body;
    expect(metrics).toMatch(/waypoint_controller_relists_total\{kind="Pod"\} (1\d|[2-9]\d)/);
    expect(metrics).toMatch(/waypoint_controller_objects\{kind="Pod"\} 1\n/);
    // Each worker process of the waypoint holds its own config stream (README, Every core).
    const streams = concurrencyOf([], process.env);
    expect(metrics).toContain(
      `waypoint_controller_connected_waypoints{gateway="shop/waypoint"} ${streams}\n`,
    );
  });

  it('keeps the waypoint serving while the controller is down, and resyncs it on restart', async () => {
    controller.proc.child.kill('SIGKILL');
    await controller.proc.exited;
    expect((await podOf()).startsWith('reviews')).toBe(true);
    const pod = api.get('v1', 'Pod', 'shop', 'reviews-a') as KubeObject;
    api.update({ ...pod, status: { ...(pod.status as object), podIP: POD_B } });
    expect(await podOf()).toBe('reviews-a'); // nobody told the waypoint yet
    controller = await startController(controller.listen);
    // The waypoint's reconnect back-off doubles up to 30 s while the controller is away.
    await eventually(async () => (await podOf()) === 'reviews-b', 'resynced after restart', 45_000);
  }, 90_000);

  it('refuses a waypoint whose identity is not the Gateway ServiceAccount', async () => {
    const other = await mesh.spawnRun({
      config: [],
      hboneIp: '127.3.40.4',
      identity: id('shop', 'not-the-waypoint'),
      env: { WAYPOINT_CONTROLLER: controller.listen },
    });
    await controller.proc.waitForStderr(/config stream: refused[^\n]*PERMISSION_DENIED/, 30_000);
    expect((await getText(other.admin, '/healthz/ready')).status).not.toBe(200);
  }, 60_000);

  it('exits 2 on a missing flag or a kubeconfig it cannot read, naming it', async () => {
    const files = await mesh.certFiles(id('istio-system', 'node-waypoint-controller'));
    const cases: Array<[string[], RegExp]> = [
      [
        ['controller', '--kubeconfig', kubeconfig],
        /without --cert\/--key\/--ca, POD_NAMESPACE must name the namespace/,
      ],
      [
        [
          'controller',
          '--kubeconfig',
          join(mesh.dir, 'missing'),
          '--cert',
          files.cert,
          '--key',
          files.key,
          '--ca',
          files.ca,
        ],
        /--kubeconfig: .*missing/,
      ],
    ];
    for (const [args, message] of cases) {
      const proc = spawnCli(args);
      expect(await proc.exited).toBe(2);
      expect(proc.stderr()).toMatch(message);
    }
  });
});
