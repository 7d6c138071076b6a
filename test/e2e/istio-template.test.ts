// Istio 1.22–1.25 can only swap the waypoint's image (sidecar.istio.io/proxyImage): the container
// then gets the template's `proxy waypoint …` arguments and environment, and nothing else. Run the
// CLI exactly so, against a fake istiod CA, and see it get its certificate and become ready.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { FakeIstioCa, ISTIOD_SAN } from '../helpers/fake-istio-ca.ts';
import { concurrencyOf, eventually, getText, spawnCli, TestMesh, waypointYaml } from '../helpers/mesh.ts';

// N workers each fetch a certificate and load the sources (N + 1 processes on 2 cores).
const WORKERS = concurrencyOf([], process.env);
let mesh: TestMesh;
let ca: FakeIstioCa;
let dir: string;

beforeEach(async () => {
  mesh = await TestMesh.create();
  ca = await FakeIstioCa.start({ ip: '127.25.77.1', token: 'tok', clusterId: 'east', ca: mesh.ca });
  dir = await mkdtemp(join(tmpdir(), 'istio-template-'));
  await writeFile(join(dir, 'istio-token'), 'tok');
  await mesh.writeConfig('waypoint.yaml', waypointYaml());
});
afterEach(async () => {
  await mesh.close();
  ca.close();
  await rm(dir, { recursive: true, force: true });
});

it(
  "runs from the template's `proxy waypoint` args and environment, with its identity from the CA",
  async () => {
    const proc = spawnCli(
      [
        'proxy',
        'waypoint',
        '--domain',
        'shop.svc.cluster.local',
        '--serviceCluster',
        'waypoint.shop',
        '--proxyLogLevel',
        'warning',
        '--proxyComponentLogLevel',
        'misc:error',
        '--log_output_level',
        'default:info',
      ],
      {
        register: (fn) => mesh.onClose(fn),
        env: {
          // The template's environment (files/waypoint.yaml), CA_ADDR pointed at the fake.
          POD_NAME: 'waypoint-6b7c9-xk2p4',
          POD_NAMESPACE: 'shop',
          SERVICE_ACCOUNT: 'waypoint',
          ISTIO_META_WORKLOAD_NAME: 'waypoint',
          ISTIO_META_CLUSTER_ID: 'east',
          TRUST_DOMAIN: 'cluster.local',
          PILOT_CERT_PROVIDER: 'istiod',
          CA_ADDR: ca.addr,
          ISTIOD_SAN,
          // What the template mounts at /var/run/secrets/{istio,tokens}, and what a cluster would stream.
          WAYPOINT_CA_ROOT: mesh.rootCertFile,
          WAYPOINT_CA_TOKEN: join(dir, 'istio-token'),
          WAYPOINT_CONFIG: mesh.configDir,
          WAYPOINT_HBONE: '127.25.77.3:15008',
          WAYPOINT_ADMIN: '127.25.77.3:15000',
          WAYPOINT_READY: '127.25.77.3:15021',
          WAYPOINT_METRICS: '127.25.77.3:15020',
        },
      },
    );
    // --proxyLogLevel warning became --log-level warn: no info lines to wait for, so poll readiness.
    const ready = { ip: '127.25.77.3', port: 15021 };
    await eventually(
      async () => (await getText(ready, '/healthz/ready')).status === 200,
      'readiness',
      15_000 * WORKERS,
    );
    expect(proc.stderr()).not.toContain('"level":"info"');
    expect(ca.calls[0]).toMatchObject({
      token: 'tok',
      clusterId: 'east',
      uris: ['spiffe://cluster.local/ns/shop/sa/waypoint'],
    });
  },
  15_000 + 15_000 * WORKERS,
);
