// `npm run bench -- --controller` (or `node bench/controller.ts [--services N] [--pods-per-service N]
// [--waypoints N] [--changes N]`): `node-waypoint controller` as a child process against the fake
// API server holding 5,000 Services, 50,000 Pods and 50 waypoint Gateways. Reports the initial sync
// time (spawn → /healthz/ready), the controller's RSS, the bytes and objects of each waypoint's
// full snapshot, and change → push latency (an API update to the push that carries it, at a
// stream connected as the waypoint) over N sequential changes.
// Addresses: API server 127.3.50.1, controller 127.3.50.2.
import { writeFile } from 'node:fs/promises';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import {
  CONFIG_STREAM_SERVICE,
  type Push,
  SUBSCRIBE_PATH,
  type WaypointMessage,
} from '../src/controller/protocol.ts';
import { channelCredentials, channelOptions } from '../src/controller/tls.ts';
import { FakeKubeApi, type KubeObject } from '../test/helpers/fake-kube-api.ts';
import { eventually, getText, id, parseHostPort, spawnCli, TestMesh } from '../test/helpers/mesh.ts';
import { memory } from './procstat.ts';

const { values } = parseArgs({
  options: {
    services: { type: 'string', default: '5000' },
    'pods-per-service': { type: 'string', default: '10' },
    waypoints: { type: 'string', default: '50' },
    changes: { type: 'string', default: '200' },
    controller: { type: 'boolean' },
  },
});
const SERVICES = Number(values.services);
const PODS_PER_SERVICE = Number(values['pods-per-service']);
const WAYPOINTS = Number(values.waypoints);
const CHANGES = Number(values.changes);

/** A Pod as the API serves it: managedFields, env, probes, status; the reflector trims it. */
function pod(ns: string, svc: string, i: number, ip: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `${svc}-${i}`,
      namespace: ns,
      labels: { app: svc, 'pod-template-hash': '5d4f8c7b9' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${svc}-5d4f8c7b9`, uid: 'x' }],
      managedFields: [
        { manager: 'kube-controller-manager', operation: 'Update', fieldsV1: { 'f:metadata': {} } },
      ],
    },
    spec: {
      serviceAccountName: svc,
      nodeName: `node-${i % 20}`,
      containers: [
        {
          name: 'app',
          image: `registry.example/${svc}:1.0`,
          ports: [{ name: 'http', containerPort: 8080 }],
          env: Array.from({ length: 8 }, (_, e) => ({ name: `ENV_${e}`, value: `value-${e}` })),
          readinessProbe: { httpGet: { path: '/ready', port: 8080 }, periodSeconds: 5 },
        },
      ],
    },
    status: {
      phase: 'Running',
      podIP: ip,
      podIPs: [{ ip }],
      hostIP: '10.250.0.1',
      conditions: [
        { type: 'Ready', status: 'True' },
        { type: 'PodScheduled', status: 'True' },
      ],
    },
  };
}

function populate(api: FakeKubeApi): void {
  api.create({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'GatewayClass',
    metadata: { name: 'istio-waypoint' },
    spec: { controllerName: 'istio.io/mesh-controller' },
  });
  const perNs = Math.ceil(SERVICES / WAYPOINTS);
  let n = 0;
  for (let w = 0; w < WAYPOINTS; w++) {
    const ns = `ns-${w}`;
    api.create({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: ns, labels: { 'istio.io/use-waypoint': 'waypoint' } },
    });
    api.create({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: 'waypoint', namespace: ns },
      spec: {
        gatewayClassName: 'istio-waypoint',
        listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
      },
    });
    for (let s = 0; s < perNs && n < SERVICES; s++, n++) populateService(api, ns, `svc-${s}`, n);
  }
}

function populateService(api: FakeKubeApi, ns: string, svc: string, n: number): void {
  api.create({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: svc, namespace: ns },
    spec: {
      clusterIP: `10.96.${n >> 8}.${n & 255}`,
      selector: { app: svc },
      ports: [{ name: 'http', port: 80, targetPort: 8080 }],
    },
  });
  const endpoints = [];
  for (let i = 0; i < PODS_PER_SERVICE; i++) {
    const k = n * PODS_PER_SERVICE + i;
    const ip = `10.${64 + (k >> 16)}.${(k >> 8) & 255}.${k & 255}`;
    api.create(pod(ns, svc, i, ip));
    endpoints.push({
      addresses: [ip],
      conditions: { ready: true },
      targetRef: { kind: 'Pod', name: `${svc}-${i}`, namespace: ns },
    });
  }
  api.create({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${svc}-abcde`, namespace: ns, labels: { 'kubernetes.io/service-name': svc } },
    addressType: 'IPv4',
    endpoints,
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  });
}

interface Stream {
  readonly first: Promise<{ bytes: number; objects: number }>;
  /** Resolves with the time the next push carrying `key` at resourceVersion `rv` arrives. */
  waitFor(key: string, rv: string): Promise<number>;
  close(): void;
}

/** A stream connected as waypoint ns/waypoint, ACKing every push. */
async function connect(mesh: TestMesh, address: string, ns: string): Promise<Stream> {
  const creds = await mesh.credentials(id(ns, 'waypoint'));
  const channel = channelCredentials(creds, id('istio-system', 'node-waypoint-controller'), () => {});
  const client = new grpc.Client(address, channel, channelOptions('127.3.50.2'));
  const method = CONFIG_STREAM_SERVICE.Subscribe!;
  const call = client.makeBidiStreamRequest(
    SUBSCRIBE_PATH,
    method.requestSerialize,
    method.responseDeserialize,
  ) as grpc.ClientDuplexStream<WaypointMessage, Push>;
  let resolveFirst: (v: { bytes: number; objects: number }) => void;
  const first = new Promise<{ bytes: number; objects: number }>((r) => (resolveFirst = r));
  let waiting: { key: string; rv: string; resolve: (t: number) => void } | undefined;
  call.on('data', (push: Push) => {
    if (push.full)
      resolveFirst({
        bytes: push.upserts.reduce((s, d) => s + d.json.length, 0),
        objects: push.upserts.length,
      });
    if (waiting && push.upserts.some((d) => d.key === waiting?.key && d.resourceVersion === waiting.rv)) {
      waiting.resolve(performance.now());
      waiting = undefined;
    }
    call.write({ ack: { version: push.version, rejected: [] } });
  });
  call.on('error', () => {});
  call.write({ hello: { gateway: `${ns}/waypoint`, node: 'bench' } });
  return {
    first,
    waitFor: (key, rv) => new Promise((resolve) => (waiting = { key, rv, resolve })),
    close: () => {
      call.cancel();
      client.close();
    },
  };
}

const pct = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
const mib = (b: number): string => `${(b / 1048576).toFixed(1)} MiB`;

async function main(): Promise<void> {
  const mesh = await TestMesh.create();
  const api = new FakeKubeApi();
  try {
    const t0 = performance.now();
    populate(api);
    console.log(
      `fake API server: ${SERVICES} Services, ${SERVICES * PODS_PER_SERVICE} Pods, ${WAYPOINTS} waypoints (built in ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );
    const server = await api.listen('127.3.50.1', 0);
    const kubeconfig = join(mesh.dir, 'kubeconfig');
    await writeFile(
      kubeconfig,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: f\n  cluster:\n    server: ${server}\nusers:\n- name: u\n  user: {}\ncontexts:\n- name: f\n  context:\n    cluster: f\n    user: u\ncurrent-context: f\n`,
    );
    const files = await mesh.certFiles(id('istio-system', 'node-waypoint-controller'));
    const start = performance.now();
    const proc = spawnCli(
      [
        'controller',
        '--kubeconfig',
        kubeconfig,
        '--listen',
        '127.3.50.2:0',
        '--health',
        '127.3.50.2:0',
        '--cert',
        files.cert,
        '--key',
        files.key,
        '--ca',
        files.ca,
      ],
      { register: (fn) => mesh.onClose(fn) },
    );
    const [line] = await proc.waitForStderr(/\{[^\n]*"msg":"controller: started"[^\n]*\}/, 60_000);
    const started = JSON.parse(line) as { listen: string; health: string };
    const health = parseHostPort(started.health);
    let peak = 0;
    await eventually(
      async () => {
        peak = Math.max(peak, memory(proc.child.pid as number)?.rss ?? 0);
        return (await getText(health, '/healthz/ready')).status === 200;
      },
      'controller synced',
      120_000,
    );
    const syncMs = performance.now() - start;
    const afterSync = memory(proc.child.pid as number);
    const streams: Stream[] = [];
    for (let w = 0; w < WAYPOINTS; w++) streams.push(await connect(mesh, started.listen, `ns-${w}`));
    const firsts = await Promise.all(streams.map((s) => s.first));
    const latencies = await measureChanges(api, streams[0] as Stream);
    const after = memory(proc.child.pid as number);
    for (const s of streams) s.close();
    report({ syncMs, afterSync, after, peak, firsts, latencies });
  } finally {
    await mesh.close();
    await api.close();
  }
}

async function measureChanges(api: FakeKubeApi, stream: Stream): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < CHANGES; i++) {
    const name = `svc-${i % 20}-${i % PODS_PER_SERVICE}`;
    const current = api.get('v1', 'Pod', 'ns-0', name) as KubeObject;
    const ip = `10.200.${i >> 8}.${i & 255}`;
    const t = performance.now();
    const stored = api.update({
      ...current,
      status: { ...(current.status as object), podIP: ip, podIPs: [{ ip }] },
    });
    const arrived = await Promise.race([
      stream.waitFor(`/Pod/ns-0/${name}`, stored.metadata.resourceVersion as string),
      new Promise<number>((_, reject) =>
        setTimeout(() => reject(new Error(`change ${i} not pushed in 10 s`)), 10_000),
      ),
    ]);
    out.push(arrived - t);
  }
  return out.sort((a, b) => a - b);
}

function report(r: {
  syncMs: number;
  afterSync: { rss: number; hwm: number } | undefined;
  after: { rss: number; hwm: number } | undefined;
  peak: number;
  firsts: { bytes: number; objects: number }[];
  latencies: number[];
}): void {
  const bytes = r.firsts.map((f) => f.bytes).sort((a, b) => a - b);
  const objs = r.firsts.map((f) => f.objects).sort((a, b) => a - b);
  console.log(
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${mib(totalmem())} RAM, Linux ${release()}, Node ${process.version}`,
  );
  console.log(
    `initial sync (spawn → /healthz/ready 200): ${(r.syncMs / 1000).toFixed(1)} s   (target ≤ 30 s)`,
  );
  console.log(
    `controller RSS after sync: ${mib(r.afterSync?.rss ?? 0)}, after ${r.firsts.length} snapshots + ${r.latencies.length} changes: ${mib(r.after?.rss ?? 0)}, peak (VmHWM): ${mib(r.after?.hwm ?? 0)}   (target ≤ 600 MB)`,
  );
  console.log(
    `full snapshot per waypoint: objects median ${pct(objs, 50)} (min ${objs[0]}, max ${objs.at(-1)}), bytes median ${pct(bytes, 50)} (${mib(bytes.reduce((s, b) => s + b, 0))} for all ${bytes.length})`,
  );
  console.log(
    `change → push at the waypoint's stream over ${r.latencies.length} changes: p50 ${pct(r.latencies, 50).toFixed(0)} ms, p99 ${pct(r.latencies, 99).toFixed(0)} ms, max ${(r.latencies.at(-1) ?? 0).toFixed(0)} ms   (target p99 ≤ 1 s)`,
  );
}

await main();
