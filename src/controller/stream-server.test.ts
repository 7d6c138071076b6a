import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemorySliceSource } from '../../test/helpers/memory-slice-source.ts';
import { eventually } from '../../test/helpers/mesh.ts';
import { docsOf, openRawStream, type RawStream } from '../../test/helpers/stream-client.ts';
import { type Credentials, memoryCredentials } from '../identity/credentials.ts';
import { createDevCa, type DevCa } from '../identity/dev-ca.ts';
import { createLogger } from '../observe/logger.ts';
import type { KubeDocument } from './slice-source.ts';
import { type ConfigStreamServer, startConfigStreamServer } from './stream-server.ts';

const CONTROLLER_ID = 'spiffe://cluster.local/ns/istio-system/sa/node-waypoint-controller';
const IP = '127.3.10.1';

function service(name: string, port = 80, namespace = 'shop'): KubeDocument {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace },
    spec: { clusterIP: '10.0.0.1', ports: [{ port }] },
  };
}

let ca: DevCa;
let source: MemorySliceSource;
let server: ConfigStreamServer;
let registry: Registry;
const logLines: string[] = [];
const streams: RawStream[] = [];

async function creds(identity: string, authority = ca): Promise<Credentials> {
  const issued = await authority.issue(identity);
  return memoryCredentials({ cert: issued.certChainPem, key: issued.keyPem, ca: ca.rootPem });
}

async function open(gateway: string, identity: string, authority = ca): Promise<RawStream> {
  const s = openRawStream({
    address: `${IP}:${server.address.port}`,
    credentials: await creds(identity, authority),
    controllerIdentity: CONTROLLER_ID,
    gateway,
  });
  streams.push(s);
  return s;
}

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

beforeAll(async () => {
  ca = await createDevCa();
  source = new MemorySliceSource();
  source.addGateway('shop/waypoint');
  source.addGateway('bank/waypoint');
  source.put('shop/waypoint', service('reviews'), service('ratings'));
  source.put('bank/waypoint', service('ledger'));
  registry = new Registry();
  server = await startConfigStreamServer({
    source,
    listen: { host: IP, port: 0 },
    credentials: await creds(CONTROLLER_ID),
    log: createLogger('debug', (l) => logLines.push(l)),
    metrics: registry,
    debounceMs: 20,
  });
});

afterAll(async () => {
  for (const s of streams) s.close();
  await server.close();
});

describe('config stream server', () => {
  it('sends a full snapshot, then only what changed, then removes', async () => {
    // A Gateway of its own: the other cases add Services to shop's, in whatever order they run.
    source.addGateway('snap/waypoint');
    source.put('snap/waypoint', service('reviews', 80, 'snap'), service('ratings', 80, 'snap'));
    const s = await open('snap/waypoint', 'spiffe://cluster.local/ns/snap/sa/waypoint');
    const full = await s.next();
    expect(full.full).toBe(true);
    expect(docsOf(full).map((d) => d.key)).toEqual(['/Service/snap/reviews', '/Service/snap/ratings']);
    expect(docsOf(full)[0]!.doc).toMatchObject({ kind: 'Service', spec: { clusterIP: '10.0.0.1' } });
    s.ack(full.version);

    source.put('snap/waypoint', service('reviews', 9080, 'snap'));
    const delta = await s.next();
    expect(delta.full).toBe(false);
    expect(docsOf(delta).map((d) => [d.key, (d.doc.spec as { ports: unknown }).ports])).toEqual([
      ['/Service/snap/reviews', [{ port: 9080 }]],
    ]);
    expect(delta.removes).toEqual([]);
    s.ack(delta.version);

    source.remove('snap/waypoint', '/Service/snap/ratings');
    const removal = await s.next();
    expect(removal).toMatchObject({ full: false, upserts: [], removes: ['/Service/snap/ratings'] });
    s.ack(removal.version);
    expect(await metric('waypoint_controller_connected_waypoints', { gateway: 'snap/waypoint' })).toBe(1);
    expect(
      await metric('waypoint_controller_sent_objects_total', { gateway: 'snap/waypoint', op: 'remove' }),
    ).toBe(1);
    s.close();
    // The waypoint went away: its subscription and its gauge go too.
    await eventually(() => source.listeners('snap/waypoint') === 0, 'the subscription dropped');
    expect(await metric('waypoint_controller_connected_waypoints', { gateway: 'snap/waypoint' })).toBe(0);
  });

  it('refuses an identity that is not the Gateway’s ServiceAccount with PERMISSION_DENIED', async () => {
    const s = await open('shop/waypoint', 'spiffe://cluster.local/ns/shop/sa/reviews');
    const status = await s.ended;
    expect(status.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(status.details).toContain(
      'spiffe://cluster.local/ns/shop/sa/reviews may not read the configuration of Gateway shop/waypoint',
    );
  });

  it('refuses a waypoint asking for another Gateway than its own', async () => {
    const s = await open('bank/waypoint', 'spiffe://cluster.local/ns/shop/sa/waypoint');
    const status = await s.ended;
    expect(status.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(status.details).toContain('(it may read: shop/waypoint)');
  });

  it('refuses a certificate from another CA at the TLS handshake', async () => {
    const other = await createDevCa();
    const s = await open('shop/waypoint', 'spiffe://cluster.local/ns/shop/sa/waypoint', other);
    expect((await s.ended).code).toBe(grpc.status.UNAVAILABLE);
  });

  it('logs and counts a NACK with the rejected resource’s message', async () => {
    const s = await open('bank/waypoint', 'spiffe://cluster.local/ns/bank/sa/waypoint');
    const full = await s.next();
    const message = 'controller 127.3.10.1: Service bank/ledger: spec.ports[0].port: expected an integer';
    const before = await metric('waypoint_controller_nacks_total', { gateway: 'bank/waypoint' });
    s.ack(full.version, [message]);
    // The next push goes out only after the controller has handled the NACK.
    source.put('bank/waypoint', service('ledger', 8080));
    s.ack((await s.next()).version);
    expect(await metric('waypoint_controller_nacks_total', { gateway: 'bank/waypoint' })).toBe(before + 1);
    const nack = logLines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.rejected === message);
    expect(nack).toMatchObject({ level: 'warn', gateway: 'bank/waypoint', version: full.version });
    s.close();
  });

  it('coalesces a burst of changes into one push', async () => {
    const s = await open('shop/waypoint', 'spiffe://cluster.local/ns/shop/sa/waypoint');
    s.ack((await s.next()).version);
    for (let i = 0; i < 50; i++) source.put('shop/waypoint', service(`burst-${i}`));
    const push = await s.next();
    expect(push.upserts.length).toBe(50);
    s.ack(push.version);
    // The push after the burst holds only the next change: nothing of the burst was left over.
    source.put('shop/waypoint', service('after'));
    const after = await s.next();
    expect(docsOf(after).map((d) => d.key)).toEqual(['/Service/shop/after']);
    s.ack(after.version);
    s.close();
  });

  it('a waypoint that never acknowledges delays no other, and later gets one delta', async () => {
    const stuck = await open('shop/waypoint', 'spiffe://cluster.local/ns/shop/sa/waypoint');
    const stuckFull = await stuck.next();
    const live = await open('shop/waypoint', 'spiffe://cluster.local/ns/shop/sa/waypoint');
    live.ack((await live.next()).version);
    for (let i = 0; i < 3; i++) {
      source.put('shop/waypoint', service(`live-${i}`));
      const push = await live.next();
      expect(docsOf(push).map((d) => d.key)).toEqual([`/Service/shop/live-${i}`]);
      live.ack(push.version);
    }
    // The stuck one held one push all along; its next is everything since, in one delta.
    stuck.ack(stuckFull.version);
    const catchUp = await stuck.next();
    expect(docsOf(catchUp).map((d) => d.key)).toEqual([
      '/Service/shop/live-0',
      '/Service/shop/live-1',
      '/Service/shop/live-2',
    ]);
    stuck.close();
    live.close();
  });

  it('answers UNAVAILABLE before the controller has synced, and ends a stream that never says Hello', async () => {
    const unsynced = new MemorySliceSource();
    unsynced.addGateway('shop/waypoint');
    unsynced.synced = false;
    const other = await startConfigStreamServer({
      source: unsynced,
      listen: { host: IP, port: 0 },
      credentials: await creds(CONTROLLER_ID),
      log: createLogger('error', () => {}),
      metrics: new Registry(),
      helloTimeoutMs: 50,
    });
    try {
      const waypointCreds = await creds('spiffe://cluster.local/ns/shop/sa/waypoint');
      const early = openRawStream({
        address: `${IP}:${other.address.port}`,
        credentials: waypointCreds,
        controllerIdentity: CONTROLLER_ID,
        gateway: 'shop/waypoint',
      });
      streams.push(early);
      expect(await early.ended).toMatchObject({
        code: grpc.status.UNAVAILABLE,
        details: 'the controller has not synced with the Kubernetes API yet',
      });
      const silent = openRawStream({
        address: `${IP}:${other.address.port}`,
        credentials: waypointCreds,
        controllerIdentity: CONTROLLER_ID,
        gateway: '',
        hello: false,
      });
      streams.push(silent);
      expect(await silent.ended).toMatchObject({
        code: grpc.status.INVALID_ARGUMENT,
        details: 'no Hello message in time',
      });
    } finally {
      await other.close();
    }
  });
});
