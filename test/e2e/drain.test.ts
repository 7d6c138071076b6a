// SIGTERM on `node-waypoint run` under load, as Kubernetes sends it: readiness fails at once, HBONE
// clients get GOAWAY, requests already under way finish, the process exits 0 within the deadline.
// Addresses: waypoint 127.0.0.5 / 127.0.0.15, VIP 127.0.53.10, pods 127.0.63.x.
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getText, id, serviceYaml, TestMesh, type WaypointProcess, waypointYaml } from '../helpers/mesh.ts';

const VIP = { ip: '127.0.53.10', port: 9080 };
const TCP_VIP = { ip: '127.0.53.20', port: 9000 };
const SLOW_MS = 400;

/** A backend that answers after SLOW_MS (or never, for /hang), counting what it has in hand. */
class SlowBackend {
  inFlight = 0;
  readonly arrived: string[] = [];
  readonly server: http.Server;
  constructor(name: string) {
    this.server = http.createServer((req, res) => {
      this.inFlight++;
      this.arrived.push(String(req.headers['x-req']));
      res.once('close', () => this.inFlight--);
      req.resume();
      if (req.url === '/hang') return;
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`${name} ${req.url}`);
      }, SLOW_MS);
    });
  }
}

describe('drain on SIGTERM', () => {
  let mesh: TestMesh;
  const backends = [new SlowBackend('slow-a'), new SlowBackend('slow-b')];
  const inFlight = (): number => backends.reduce((n, b) => n + b.inFlight, 0);
  const arrived = (): string[] => backends.flatMap((b) => b.arrived);

  beforeAll(async () => {
    mesh = await TestMesh.create();
    await mesh.writeConfig(
      'mesh.yaml',
      [
        waypointYaml(),
        serviceYaml({
          name: 'slow',
          vip: VIP.ip,
          port: VIP.port,
          pods: [
            { name: 'slow-a', ip: '127.0.63.11' },
            { name: 'slow-b', ip: '127.0.63.12' },
          ],
        }),
        serviceYaml({
          name: 'echo',
          vip: TCP_VIP.ip,
          port: TCP_VIP.port,
          appProtocol: 'tcp',
          pods: [{ name: 'echo-a', ip: '127.0.63.21' }],
        }),
      ].join('---\n'),
    );
    const echo = net.createServer((s) => s.pipe(s));
    await mesh.pod('127.0.63.21', 9000, echo, id('shop', 'echo'));
    await mesh.pod('127.0.63.11', 9080, backends[0]!.server, id('shop', 'slow'));
    await mesh.pod('127.0.63.12', 9080, backends[1]!.server, id('shop', 'slow'));
  });
  afterAll(() => mesh?.close());

  /** A bare HBONE session to the waypoint, as ztunnel holds one, to see its GOAWAY. */
  const hboneSession = async (wp: WaypointProcess): Promise<http2.ClientHttp2Session> => {
    const tls = (await mesh.credentials(id('shop', 'productpage'))).tlsOptions();
    const session = http2.connect(`https://${wp.hbone.ip}:${wp.hbone.port}`, {
      ...tls,
      ALPNProtocols: ['h2'],
      servername: '',
      checkServerIdentity: () => undefined,
    });
    session.on('error', () => {});
    mesh.onClose(() => session.destroy());
    await new Promise<void>((resolve, reject) => {
      session.once('remoteSettings', () => resolve());
      session.once('error', reject);
    });
    return session;
  };

  it('finishes every request under way, fails readiness at once, sends GOAWAY, exits 0', async () => {
    const wp = await mesh.spawnRun({ hboneIp: '127.0.0.5', args: ['--drain-deadline', '5'] });
    expect((await getText(wp.admin, '/healthz/ready')).status).toBe(200);
    const watcher = await hboneSession(wp);
    let goaway = false;
    watcher.once('goaway', () => (goaway = true));

    const client = await mesh.hboneClient(id('shop', 'productpage'));
    const WORKERS = 8;
    const pool = mesh.httpPool(client, wp.hbone, VIP, { connections: WORKERS });
    let signalled = false;
    const results: Array<{ id: string; beforeSignal: boolean; status: number | string }> = [];
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; i < 50 && !signalled; i++) {
        const reqId = `${w}-${i}`;
        const beforeSignal = !signalled;
        let status: number | string;
        try {
          const res = await pool.request({ method: 'GET', path: `/w/${reqId}`, headers: { 'x-req': reqId } });
          const body = await res.body.text();
          status = res.statusCode;
          if (status === 200) expect(body).toMatch(new RegExp(`^slow-[ab] /w/${reqId}$`));
        } catch (err) {
          status = (err as Error).message;
        }
        results.push({ id: reqId, beforeSignal, status });
      }
    };
    const workers = Array.from({ length: WORKERS }, (_, w) => worker(w));

    // Signal once every worker has a request in the backend's hands (after at least one full round).
    const loadDeadline = Date.now() + 10_000;
    while (!(results.length >= WORKERS && inFlight() === WORKERS) && Date.now() < loadDeadline)
      await new Promise((r) => setTimeout(r, 5));
    expect(inFlight()).toBe(WORKERS);
    const underWay = new Set(arrived().filter((r) => !results.some((x) => x.id === r)));
    expect(underWay.size).toBe(WORKERS);

    const signalAt = Date.now();
    signalled = true;
    wp.child.kill('SIGTERM');

    // Readiness fails while those requests are still running.
    let ready = await getText(wp.admin, '/healthz/ready');
    for (let i = 0; i < 40 && ready.status === 200; i++) {
      await new Promise((r) => setTimeout(r, 5));
      ready = await getText(wp.admin, '/healthz/ready');
    }
    expect(ready).toEqual({ status: 503, body: 'not ready: draining\n' });
    expect(inFlight()).toBeGreaterThan(0);
    const scrape = await getText(wp.metrics, '/stats/prometheus');
    expect(scrape.body).toMatch(/^waypoint_draining 1$/m);

    const code = await wp.exited;
    const tookMs = Date.now() - signalAt;
    await Promise.all(workers);
    expect(code).toBe(0);
    expect(tookMs).toBeLessThan(5_000);
    expect(goaway).toBe(true);

    // Every request that had started before the signal completed with 200.
    const before = results.filter((r) => r.beforeSignal);
    expect(before.length).toBeGreaterThanOrEqual(2 * WORKERS);
    expect(before.filter((r) => r.status !== 200)).toEqual([]);
    for (const reqId of underWay) expect(results.find((r) => r.id === reqId)?.status).toBe(200);
    expect(wp.stderr()).toContain('drain: all requests finished');
  });

  it('exits 0 once the deadline passes, even with a request still running', async () => {
    const wp = await mesh.spawnRun({ hboneIp: '127.0.0.15', args: ['--drain-deadline', '1'] });
    const client = await mesh.hboneClient(id('shop', 'productpage'));
    const pool = mesh.httpPool(client, wp.hbone, VIP);
    const hanging = pool.request({ method: 'GET', path: '/hang', headers: { 'x-req': 'hang' } }).then(
      async (r) => ({ status: r.statusCode, body: await r.body.text().catch(() => '') }),
      (e: Error) => ({ status: 0, body: e.message }),
    );
    const deadline = Date.now() + 5_000;
    while (!arrived().includes('hang') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(arrived()).toContain('hang');

    const signalAt = Date.now();
    wp.child.kill('SIGTERM');
    expect(await wp.exited).toBe(0);
    const tookMs = Date.now() - signalAt;
    expect(tookMs).toBeGreaterThanOrEqual(900);
    expect(tookMs).toBeLessThan(4_000);
    // The request that outlived the deadline was cut off, not answered 200.
    expect((await hanging).status).not.toBe(200);
    const drainLog = wp
      .stderr()
      .split('\n')
      .find((l) => l.includes('drain: deadline passed'));
    expect(drainLog && JSON.parse(drainLog)).toMatchObject({ abandoned: 1 });
  });

  it('lets a TCP tunnel open at the signal carry on until its client closes it', async () => {
    const wp = await mesh.spawnRun({ hboneIp: '127.0.0.25', args: ['--drain-deadline', '5'] });
    const client = await mesh.hboneClient(id('shop', 'productpage'));
    const tunnel = await TestMesh.tunnel(client, wp.hbone, TCP_VIP);
    const roundTrip = (text: string): Promise<string> =>
      new Promise((resolve, reject) => {
        let got = '';
        const onData = (d: Buffer): void => {
          got += d.toString();
          if (got.length >= text.length) {
            tunnel.off('data', onData);
            resolve(got);
          }
        };
        tunnel.on('data', onData);
        tunnel.once('close', () => reject(new Error(`tunnel closed after ${JSON.stringify(got)}`)));
        tunnel.write(text);
      });
    expect(await roundTrip('before')).toBe('before');

    const signalAt = Date.now();
    wp.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    expect(wp.child.exitCode).toBeNull();
    expect(await roundTrip('during the drain')).toBe('during the drain');
    tunnel.end();
    expect(await wp.exited).toBe(0);
    expect(Date.now() - signalAt).toBeLessThan(4_000);
  });
});
