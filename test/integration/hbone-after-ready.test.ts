// A worker restarted under `run --concurrency N` joins the shared HBONE port only once it can serve
// (hboneAfterReady): until its configuration names the Gateway, new tunnels go to its siblings,
// not to a process that would refuse them. A single process binds at once and lets readiness keep
// it out of traffic.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Waypoint } from '../../src/waypoint.ts';
import { eventually, getText, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const IP = '127.47.0.1';
const HBONE = { ip: IP, port: 15008 };
const ADMIN = { ip: IP, port: 15000 };

/** Whether something accepts TCP connections on hp. */
function accepts(hp: { ip: string; port: number }): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: hp.ip, port: hp.port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('hboneAfterReady: HBONE is bound once the certificate and the configuration are in', () => {
  let mesh: TestMesh;
  beforeAll(async () => {
    mesh = await TestMesh.create();
    // A Service, but not yet the waypoint's Gateway: the configuration is not this waypoint's yet.
    await mesh.writeConfig(
      'service.yaml',
      serviceYaml({
        name: 'api',
        vip: '127.47.0.10',
        port: 80,
        pods: [{ name: 'api-a', ip: '127.47.0.11' }],
      }),
    );
  });
  afterAll(() => mesh.close());

  it('waits for the Gateway before it listens on HBONE, then serves', async () => {
    let started: Waypoint | undefined;
    const start = mesh
      .startWaypoint({
        ip: IP,
        hbone: { host: IP, port: HBONE.port },
        admin: { host: IP, port: ADMIN.port },
        hboneAfterReady: true,
      })
      .then((w) => (started = w));
    // The admin port is up and says why it is not ready; HBONE refuses connections meanwhile.
    const ready = await eventually(async () => {
      const r = await getText(ADMIN, '/healthz/ready').catch(() => undefined);
      return r?.status === 503 ? r : false;
    }, 'the admin port to answer');
    expect(ready.body).toMatch(/waiting for [a-z, ]*config/);
    expect(await accepts(HBONE)).toBe(false);
    expect(started).toBeUndefined();

    await mesh.writeConfig('gateway.yaml', waypointYaml());
    const waypoint = await start;
    expect(waypoint.addresses?.hbone).toEqual(HBONE);
    expect(await accepts(HBONE)).toBe(true);
    expect((await getText(ADMIN, '/healthz/ready')).status).toBe(200);
  });
});
