// A waypoint whose identity comes from (a fake of) istiod's CA: not ready until the CA answers, and
// certificates renewed every few seconds under steady traffic without a failed request.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CaCredentials, caCredentials } from '../../src/identity/ca-credentials.ts';
import { silentLogger } from '../../src/observe/logger.ts';
import { FakeIstioCa, ISTIOD_SAN } from '../helpers/fake-istio-ca.ts';
import { curl, getText, id, metricValue, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const TOKEN = 'waypoint-token';
let mesh: TestMesh;
let ca: FakeIstioCa;
let dir: string;
let creds: CaCredentials;

beforeEach(async () => {
  mesh = await TestMesh.create();
  ca = await FakeIstioCa.start({ ip: '127.0.77.1', token: TOKEN, ca: mesh.ca });
  dir = await mkdtemp(join(tmpdir(), 'istio-ca-int-'));
  await writeFile(join(dir, 'istio-token'), TOKEN);
  await mesh.writeConfig(
    'mesh.yaml',
    `${waypointYaml()}---\n${serviceYaml({ name: 'echo', vip: '127.0.77.20', port: 8080, pods: [{ name: 'echo-1', ip: '127.0.77.10' }] })}`,
  );
  await mesh.pod('127.0.77.10', 8080, TestMesh.echoServer('echo-1'), id('shop', 'echo'));
});
afterEach(async () => {
  creds?.close();
  await mesh.close();
  ca.close();
  await rm(dir, { recursive: true, force: true });
});

async function credentials(ttlSeconds: number): Promise<CaCredentials> {
  creds = await caCredentials({
    addr: ca.addr,
    serverName: ISTIOD_SAN,
    rootFile: mesh.rootCertFile,
    tokenFile: join(dir, 'istio-token'),
    clusterId: 'Kubernetes',
    trustDomain: 'cluster.local',
    namespace: 'shop',
    serviceAccount: 'waypoint',
    ttlSeconds,
    log: silentLogger,
  });
  return creds;
}

describe('a waypoint with certificates from the CA', () => {
  it('is not ready while the CA rejects its token, and says why', async () => {
    await writeFile(join(dir, 'istio-token'), 'expired');
    const c = await credentials(600);
    const wp = await mesh.startWaypoint({ ip: '127.0.77.2', credentials: c });
    await new Promise((r) => c.once('failed', r));
    const ready = await getText(wp.addresses!.admin, '/healthz/ready');
    expect(ready.status).toBe(503);
    expect(ready.body).toContain('certificate');
    await writeFile(join(dir, 'istio-token'), TOKEN);
    await c.certificateReady;
    const m = await getText(wp.addresses!.metrics, '/stats/prometheus');
    expect(
      metricValue(m.body, 'waypoint_certificate_failures_total', { reason: 'token_rejected' }),
    ).toBeGreaterThan(0);
  });

  it('renews a 4 s certificate twice under steady traffic with no failed request', async () => {
    const c = await credentials(4);
    const wp = await mesh.startWaypoint({ ip: '127.0.77.2', credentials: c });
    await c.certificateReady;
    const client = await mesh.outbound({
      listen: { ip: '127.0.77.5', port: 0 },
      waypoint: wp.addresses!.hbone,
      destination: { ip: '127.0.77.20', port: 8080 },
      identity: id('shop', 'sleep'),
    });
    let renewals = 0;
    c.on('issued', () => renewals++);
    const keepAlive = new Client(`http://${client.ip}:${client.port}`);
    const failures: string[] = [];
    let sent = 0;
    // Bounded: at most 20000 requests or 30 s; two renewals take about 4 s.
    const deadline = Date.now() + 30_000;
    while (renewals < 2 && sent < 20_000 && Date.now() < deadline) {
      sent += 2;
      const [fresh, pooled] = await Promise.all([
        curl(client, '/fresh').catch((e: Error) => ({ status: 0, body: e.message })),
        keepAlive
          .request({ path: '/pooled', method: 'GET' })
          .then(async (r) => ({ status: r.statusCode, body: await r.body.text() }))
          .catch((e: Error) => ({ status: 0, body: e.message })),
      ]);
      for (const r of [fresh, pooled]) if (r.status !== 200) failures.push(`${r.status} ${r.body}`);
    }
    await keepAlive.close();
    expect(renewals).toBeGreaterThanOrEqual(2);
    expect(failures).toEqual([]);
    expect(sent).toBeGreaterThan(10);
  });
});
