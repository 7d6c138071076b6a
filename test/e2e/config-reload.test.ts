// Configuration changes on a running `node-waypoint run`, as a user makes them: files in the
// --config directory are added, edited and broken while traffic flows; nothing restarts.
// Addresses: waypoint 127.25.0.4 (127.0.0.14 for the second process), VIPs 127.0.52.x, pods 127.0.62.x.
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  eventually,
  getText,
  id,
  metricValue,
  type PodSpec,
  serviceYaml,
  TestMesh,
  type WaypointProcess,
  waypointYaml,
} from '../helpers/mesh.ts';

const REVIEWS = { ip: '127.0.52.10', port: 9080 };
const DETAILS = { ip: '127.0.52.20', port: 9080 };
const RATINGS = { ip: '127.0.52.30', port: 9080 };
const POD: Record<string, PodSpec> = {
  a: { name: 'reviews-a', ip: '127.0.62.11' },
  b: { name: 'reviews-b', ip: '127.0.62.12' },
  c: { name: 'reviews-c', ip: '127.0.62.13' },
};

const reviews = (...pods: Array<keyof typeof POD>): string =>
  serviceYaml({ name: 'reviews', vip: REVIEWS.ip, port: REVIEWS.port, pods: pods.map((p) => POD[p]!) });

/** The `config: rejected: ...` messages of the waypoint's JSON log, in order. */
function rejections(stderr: string): string[] {
  const out: string[] = [];
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    const msg = (JSON.parse(line) as { msg: string }).msg;
    if (msg.startsWith('config: rejected: ')) out.push(msg);
  }
  return out;
}

/** One worker's /config_dump (the primary's admin port forwards `?worker=N`; one process ignores it). */
async function workerDump(wp: WaypointProcess, worker: number): Promise<Dump> {
  return JSON.parse((await getText(wp.admin, `/config_dump?worker=${worker}`)).body) as Dump;
}

/** The endpoints of `key` in force in every worker; throws while the workers disagree. */
async function agreedEndpoints(wp: WaypointProcess, key: string): Promise<string[] | undefined> {
  const workers = Array.from({ length: wp.workers }, (_, i) => i);
  const each = await Promise.all(
    workers.map(async (w) => (await workerDump(wp, w)).services[key]?.endpoints.map((e) => e.ip).sort()),
  );
  const views = new Set(each.map((e) => JSON.stringify(e ?? null)));
  if (views.size > 1) throw new Error(`the workers disagree on ${key}: ${[...views].join(' / ')}`);
  return each[0];
}

interface Dump {
  version: number;
  services: Record<string, { service: { name: string }; endpoints: Array<{ ip: string }> }>;
}

describe('config changes on a running waypoint', () => {
  let mesh: TestMesh;
  let wp: WaypointProcess;

  const dump = async (): Promise<Dump> => JSON.parse((await getText(wp.admin, '/config_dump')).body) as Dump;
  /** The endpoints of `key` once every worker agrees on them (each applies the files on its own). */
  const endpointsOf = (key: string): Promise<string[] | undefined> => agreedEndpoints(wp, key);
  const scrape = async (): Promise<string> => (await getText(wp.metrics, '/stats/prometheus')).body;
  /** Each case starts from the reviews endpoints it needs, whatever ran before it. */
  const setReviews = async (...pods: Array<keyof typeof POD>): Promise<void> => {
    await mesh.writeConfig('reviews.yaml', reviews(...pods));
    const want = pods
      .map((p) => POD[p]!.ip)
      .sort()
      .join();
    await eventually(async () => (await endpointsOf('127.0.52.10:9080'))?.join() === want, `reviews ${want}`);
  };

  beforeAll(async () => {
    mesh = await TestMesh.create();
    await mesh.writeConfig('00-waypoint.yaml', waypointYaml());
    await mesh.writeConfig('reviews.yaml', reviews('a', 'b'));
    await mesh.writeConfig(
      'ratings.yaml',
      serviceYaml({
        name: 'ratings',
        vip: RATINGS.ip,
        port: RATINGS.port,
        pods: [{ name: 'ratings-a', ip: '127.0.62.31' }],
      }),
    );
    for (const p of Object.values(POD))
      await mesh.pod(p.ip, 9080, TestMesh.echoServer(p.name), id('shop', 'reviews'));
    await mesh.pod('127.0.62.21', 9080, TestMesh.echoServer('details-a'), id('shop', 'details'));
    await mesh.pod('127.0.62.31', 9080, TestMesh.echoServer('ratings-a'), id('shop', 'ratings'));
    wp = await mesh.spawnWaypoint([], { hboneIp: '127.25.0.4' });
  });
  afterAll(() => mesh?.close());

  /** GETs through a keep-alive pool; returns the pods that answered, failing on anything but 200. */
  const podsAnswering = async (pool: ReturnType<TestMesh['httpPool']>, n: number): Promise<string[]> => {
    const pods = new Set<string>();
    for (let i = 0; i < n; i++) {
      const res = await pool.request({ method: 'GET', path: `/p/${i}` });
      expect(res.statusCode).toBe(200);
      pods.add(((await res.body.json()) as { pod: string }).pod);
    }
    return [...pods].sort();
  };

  it('serves a Service added to the config directory, without restarting', async () => {
    await rm(join(mesh.configDir, 'details.yaml'), { force: true });
    await eventually(async () => (await endpointsOf('127.0.52.20:9080')) === undefined, 'details gone');
    const client = await mesh.hboneClient(id('shop', 'productpage'));
    const refused = await TestMesh.tunnel(client, wp.hbone, DETAILS).catch((e: unknown) => e);
    expect(refused).toMatchObject({ failure: 'refused', status: 503 });

    await mesh.writeConfig(
      'details.yaml',
      serviceYaml({
        name: 'details',
        vip: DETAILS.ip,
        port: DETAILS.port,
        pods: [{ name: 'details-a', ip: '127.0.62.21' }],
      }),
    );
    expect(await eventually(() => endpointsOf('127.0.52.20:9080'), 'details in /config_dump')).toEqual([
      '127.0.62.21',
    ]);
    const pool = mesh.httpPool(client, wp.hbone, DETAILS);
    expect(await podsAnswering(pool, 3)).toEqual(['details-a']);
    expect(wp.child.exitCode).toBeNull();
  });

  it('moves traffic, on connections already open, to changed endpoints', async () => {
    await setReviews('a', 'b');
    const client = await mesh.hboneClient(id('shop', 'productpage'));
    const pool = mesh.httpPool(client, wp.hbone, REVIEWS, { connections: 2 });
    expect(await podsAnswering(pool, 20)).toEqual(['reviews-a', 'reviews-b']);

    await mesh.writeConfig('reviews.yaml', reviews('b', 'c'));
    await eventually(
      async () => (await endpointsOf('127.0.52.10:9080'))?.join() === '127.0.62.12,127.0.62.13',
      'new reviews endpoints in /config_dump',
    );
    // The pool's tunnels were opened before the change; their requests must follow it.
    expect(await podsAnswering(pool, 20)).toEqual(['reviews-b', 'reviews-c']);
    // And new tunnels too.
    const fresh = mesh.httpPool(await mesh.hboneClient(id('shop', 'productpage')), wp.hbone, REVIEWS);
    expect(await podsAnswering(fresh, 20)).toEqual(['reviews-b', 'reviews-c']);
  });

  it('loses no request while the files change several times under load', async () => {
    await setReviews('b'); // so that each of the sets below is a change
    const client = await mesh.hboneClient(id('shop', 'productpage'));
    const pool = mesh.httpPool(client, wp.hbone, REVIEWS, { connections: 6 });
    const statuses = new Map<number | string, number>();
    let stop = false;
    const deadline = Date.now() + 8_000;
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; i < 400 && !stop && Date.now() < deadline; i++) {
        let key: number | string;
        try {
          const res = await pool.request({
            method: i % 2 ? 'POST' : 'GET',
            path: `/w${w}/${i}`,
            body: i % 2 ? 'hi' : null,
          });
          await res.body.text();
          key = res.statusCode;
        } catch (err) {
          key = (err as Error).message;
        }
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
      }
    };
    const workers = Array.from({ length: 6 }, (_, w) => worker(w));
    const sets: Array<Array<keyof typeof POD>> = [['a', 'b'], ['c'], ['a', 'c'], ['a', 'b', 'c'], ['b']];
    const versionBefore = (await dump()).version;
    for (const [i, set] of sets.entries()) {
      await mesh.writeConfig('reviews.yaml', reviews(...set));
      // An unrelated file changes too, now and then.
      if (i % 2 === 0)
        await mesh.writeConfig(
          'details.yaml',
          serviceYaml({
            name: 'details',
            vip: DETAILS.ip,
            port: DETAILS.port,
            pods: [{ name: `details-a${i}`, ip: '127.0.62.21' }],
          }),
        );
      const want = set
        .map((p) => POD[p]!.ip)
        .sort()
        .join();
      await eventually(
        async () => (await endpointsOf('127.0.52.10:9080'))?.join() === want,
        `reviews endpoints ${want}`,
      );
    }
    stop = true;
    await Promise.all(workers);
    const total = [...statuses.values()].reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(50);
    expect(Object.fromEntries(statuses)).toEqual({ 200: total });
    expect((await dump()).version).toBeGreaterThanOrEqual(versionBefore + sets.length);
    // The last set is in force: only pod b answers.
    expect(await podsAnswering(pool, 10)).toEqual(['reviews-b']);
  });

  it('rejects a bad edit alone, naming file, kind, object and field, and keeps the last good version', async () => {
    await setReviews('a', 'b');
    const logged = wp.stderr().length;
    const before = metricValue(await scrape(), 'waypoint_config_resources_rejected_total');
    const file = await mesh.writeConfig(
      'reviews.yaml',
      reviews('a', 'b').replace('port: 9080\n      targetPort: 9080', 'port: eighty\n      targetPort: 9080'),
    );
    await mesh.writeConfig(
      'broken.yaml',
      `apiVersion: v1
kind: Service
metadata:
  namespace: shop
spec:
  clusterIP: 127.0.52.40
  ports:
    - port: 9080
`,
    );
    // One line per rejection on stderr (JSON log), each with file, kind, namespace/name and field.
    const eighty = await eventually(
      () => rejections(wp.stderr().slice(logged)).find((m) => m.includes('reviews.yaml')),
      'the reviews.yaml rejection',
    );
    expect(eighty).toContain(`${file}#1: Service shop/reviews: spec.ports[0].port:`);
    expect(eighty).toContain('"eighty"');
    expect(eighty).toContain('keeping the last good version');
    const noName = await eventually(
      () => rejections(wp.stderr().slice(logged)).find((m) => m.includes('broken.yaml')),
      'the broken.yaml rejection',
    );
    expect(noName).toContain(join(mesh.configDir, 'broken.yaml'));
    expect(noName).toContain('Service shop/');
    expect(noName).toContain('metadata.name');

    // /config_dump lists what is rejected right now, field by field (in every worker).
    const rejectedBy = async (w: number) =>
      (JSON.parse((await getText(wp.admin, `/config_dump?worker=${w}`)).body) as { rejected: unknown[] })
        .rejected;
    for (let w = 0; w < wp.workers; w++)
      await eventually(async () => (await rejectedBy(w)).length >= 2, `worker ${w}'s rejections`);
    const rejected = await rejectedBy(0);
    expect(rejected).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          severity: 'error',
          origin: `${file}#1`,
          kind: 'Service',
          namespace: 'shop',
          name: 'reviews',
          field: 'spec.ports[0].port',
        }),
        expect.objectContaining({
          kind: 'Service',
          namespace: 'shop',
          field: expect.stringContaining('metadata.name'),
        }),
      ]),
    );
    await eventually(
      async () => metricValue(await scrape(), 'waypoint_config_resources_rejected_total') >= before + 2,
      'waypoint_config_resources_rejected_total to grow by 2',
    );
    // reviews keeps its last good version (pods a and b: the pods in the bad file still apply,
    // they are separate resources), and the other Services are untouched.
    expect(await endpointsOf('127.0.52.10:9080')).toEqual(['127.0.62.11', '127.0.62.12']);
    const client = await mesh.hboneClient(id('shop', 'productpage'));
    expect(await podsAnswering(mesh.httpPool(client, wp.hbone, REVIEWS), 20)).toEqual([
      'reviews-a',
      'reviews-b',
    ]);
    expect(await podsAnswering(mesh.httpPool(client, wp.hbone, RATINGS), 2)).toEqual(['ratings-a']);
    expect(await getText(wp.admin, '/healthz/ready')).toMatchObject({ status: 200 });

    // Fixing the file applies the fix.
    await mesh.writeConfig('reviews.yaml', reviews('c'));
    await rm(join(mesh.configDir, 'broken.yaml'));
    await eventually(
      async () => (await endpointsOf('127.0.52.10:9080'))?.join() === '127.0.62.13',
      'the fixed reviews.yaml to apply',
    );
    for (let w = 0; w < wp.workers; w++)
      await eventually(async () => (await rejectedBy(w)).length === 0, `no rejections left in worker ${w}`);
  });

  it('keeps everything a file defined when the file stops parsing', async () => {
    await setReviews('c');
    const logged = wp.stderr().length;
    const file = await mesh.writeConfig('reviews.yaml', 'apiVersion: v1\nkind: Service\nmetadata: [oops\n');
    const msg = await eventually(
      () =>
        rejections(wp.stderr().slice(logged)).find((m) => m.startsWith(`config: rejected: ${file}: line`)),
      'the parse error',
    );
    expect(msg).toContain('keeping the');
    const client = await mesh.hboneClient(id('shop', 'productpage'));
    expect(await podsAnswering(mesh.httpPool(client, wp.hbone, REVIEWS), 5)).toEqual(['reviews-c']);
    expect(await endpointsOf('127.0.52.10:9080')).toEqual(['127.0.62.13']);
  });

  it('is not ready while the configuration lacks its Gateway, and becomes ready when it appears', async () => {
    const dir = join(mesh.dir, 'config-late-gateway');
    await mkdir(dir);
    await writeFile(
      join(dir, 'ratings.yaml'),
      serviceYaml({
        name: 'ratings',
        vip: RATINGS.ip,
        port: RATINGS.port,
        pods: [{ name: 'ratings-a', ip: '127.0.62.31' }],
      }),
    );
    const late = await mesh.spawnRun({ config: [dir], hboneIp: '127.0.0.24' });
    const notReady = await getText(late.admin, '/healthz/ready');
    expect(notReady.status).toBe(503);
    expect(notReady.body).toContain('config');
    await writeFile(join(dir, 'waypoint.yaml'), waypointYaml());
    await eventually(async () => (await getText(late.admin, '/healthz/ready')).status === 200, 'ready');
    const client = await mesh.hboneClient(id('shop', 'productpage'));
    expect(await podsAnswering(mesh.httpPool(client, late.hbone, RATINGS), 2)).toEqual(['ratings-a']);
    late.child.kill('SIGTERM');
    expect(await late.exited).toBe(0);
  });

  it('watches --config files given one by one, including a save by rename', async () => {
    const dir = join(mesh.dir, 'config-files');
    await mkdir(dir);
    const gatewayFile = join(dir, 'gateway.yaml');
    const servicesFile = join(dir, 'services.yaml');
    await writeFile(gatewayFile, waypointYaml());
    await writeFile(servicesFile, reviews('a'));
    // A file next to them that is not on the command line: never read.
    await writeFile(
      join(dir, 'other.yaml'),
      serviceYaml({
        name: 'details',
        vip: DETAILS.ip,
        port: DETAILS.port,
        pods: [{ name: 'd', ip: '127.0.62.21' }],
      }),
    );
    const files = await mesh.spawnRun({ config: [gatewayFile, servicesFile], hboneIp: '127.0.0.34' });
    const dumpOf = async (): Promise<Dump> =>
      JSON.parse((await getText(files.admin, '/config_dump')).body) as Dump;
    expect(Object.keys((await dumpOf()).services)).toEqual(['127.0.52.10:9080']);
    const client = await mesh.hboneClient(id('shop', 'productpage'));
    const pool = mesh.httpPool(client, files.hbone, REVIEWS);
    expect(await podsAnswering(pool, 5)).toEqual(['reviews-a']);

    // An editor that writes a temporary file and renames it over the original.
    await writeFile(`${servicesFile}.swp`, reviews('b', 'c'));
    await rename(`${servicesFile}.swp`, servicesFile);
    await eventually(
      async () => (await agreedEndpoints(files, '127.0.52.10:9080'))?.join() === '127.0.62.12,127.0.62.13',
      'the renamed-over file to apply',
    );
    expect(await podsAnswering(pool, 20)).toEqual(['reviews-b', 'reviews-c']);
    expect(Object.keys((await dumpOf()).services)).toEqual(['127.0.52.10:9080']);
    files.child.kill('SIGTERM');
    expect(await files.exited).toBe(0);
  });

  it('starts from a directory with one bad resource, serving the good ones', async () => {
    const dir = join(mesh.dir, 'config-with-bad');
    await mkdir(dir);
    await writeFile(join(dir, 'waypoint.yaml'), waypointYaml());
    await writeFile(
      join(dir, 'services.yaml'),
      [
        serviceYaml({
          name: 'ratings',
          vip: RATINGS.ip,
          port: RATINGS.port,
          pods: [{ name: 'ratings-a', ip: '127.0.62.31' }],
        }),
        serviceYaml({ name: 'reviews', vip: REVIEWS.ip, port: REVIEWS.port, pods: [POD.a!] }).replace(
          'port: 9080\n',
          'port: "eighty"\n',
        ),
      ].join('---\n'),
    );
    const second = await mesh.spawnRun({ config: [dir], hboneIp: '127.0.0.14' });
    const rejected = await eventually(
      () => rejections(second.stderr()).find((m) => m.includes('services.yaml')),
      'the services.yaml rejection',
    );
    expect(rejected).toContain('Service shop/reviews: spec.ports[0].port:');
    expect(await getText(second.admin, '/healthz/ready')).toMatchObject({ status: 200 });
    expect(
      metricValue(
        await getText(second.metrics, '/stats/prometheus').then((r) => r.body),
        'waypoint_config_resources_rejected_total',
      ),
    ).toBeGreaterThanOrEqual(1);
    const client = await mesh.hboneClient(id('shop', 'productpage'));
    expect(await podsAnswering(mesh.httpPool(client, second.hbone, RATINGS), 2)).toEqual(['ratings-a']);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });
});
