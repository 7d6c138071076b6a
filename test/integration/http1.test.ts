// HTTP/1.1 through the waypoint: HBONE in from a ztunnel-like client, HBONE out to endpoints.
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectRequest } from '../../src/hbone/server.ts';
import { createDevCa } from '../../src/identity/dev-ca.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

describe('HTTP/1.1 through the waypoint', () => {
  let mesh: TestMesh;
  let waypoint: Waypoint;
  const seenByDestination: ConnectRequest[] = [];

  beforeAll(async () => {
    mesh = await TestMesh.create();
    await mesh.writeConfig(
      'mesh.yaml',
      [
        waypointYaml(),
        serviceYaml({
          name: 'reviews',
          vip: '127.0.1.10',
          port: 9080,
          pods: [
            { name: 'reviews-a', ip: '127.0.2.11' },
            { name: 'reviews-b', ip: '127.0.2.12' },
          ],
        }),
        // An endpoint whose HBONE port refuses connections (no stand-in listens on 127.0.2.21:15008).
        serviceYaml({
          name: 'broken',
          vip: '127.0.1.20',
          port: 9080,
          pods: [{ name: 'broken-a', ip: '127.0.2.21' }],
        }),
        serviceYaml({
          name: 'empty',
          vip: '127.0.1.30',
          port: 9080,
          pods: [{ name: 'empty-a', ip: '127.0.2.31', ready: false }],
        }),
      ].join('---\n'),
    );
    for (const [name, ip] of [
      ['reviews-a', '127.0.2.11'],
      ['reviews-b', '127.0.2.12'],
    ] as const) {
      await mesh.pod(ip, 9080, TestMesh.echoServer(name), id('shop', 'reviews'), {
        onTunnel: (r) => seenByDestination.push(r),
      });
    }
    waypoint = await mesh.startWaypoint();
  });
  afterAll(() => mesh.close());

  const vip = { ip: '127.0.1.10', port: 9080 };

  it('serves GET and POST, balancing across both endpoints', async () => {
    const client = await mesh.hboneClient(id('shop', 'productpage'));
    const pool = mesh.httpPool(client, waypoint.addresses!.hbone, vip, { connections: 4 });
    const pods = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const res = await pool.request({ method: 'GET', path: `/reviews/${i}` });
      expect(res.statusCode).toBe(200);
      const body = (await res.body.json()) as { pod: string; path: string };
      expect(body.path).toBe(`/reviews/${i}`);
      pods.add(body.pod);
    }
    expect([...pods].sort()).toEqual(['reviews-a', 'reviews-b']);
    const post = await pool.request({
      method: 'POST',
      path: '/reviews',
      body: 'x'.repeat(1000),
      headers: { 'content-type': 'text/plain' },
    });
    expect(post.statusCode).toBe(200);
    expect(((await post.body.json()) as { bytes: number }).bytes).toBe(1000);
  });

  it('keeps the Host header, adds x-request-id, strips hop-by-hop headers', async () => {
    const client = await mesh.hboneClient(id('shop', 'productpage'));
    const pool = mesh.httpPool(client, waypoint.addresses!.hbone, vip);
    const res = await pool.request({
      method: 'GET',
      path: '/h',
      headers: {
        host: 'reviews.shop.svc.cluster.local:9080',
        'proxy-connection': 'keep-alive',
        'x-custom': 'kept',
      },
    });
    const body = (await res.body.json()) as { headers: Record<string, string> };
    expect(body.headers.host).toBe('reviews.shop.svc.cluster.local:9080');
    expect(body.headers['x-custom']).toBe('kept');
    expect(body.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.headers['proxy-connection']).toBeUndefined();
  });

  it('streams chunked bodies and reuses keep-alive connections', async () => {
    const client = await mesh.hboneClient(id('shop', 'productpage'));
    const pool = mesh.httpPool(client, waypoint.addresses!.hbone, vip, { connections: 1 });
    async function* chunks() {
      for (let i = 0; i < 10; i++) yield Buffer.alloc(1000, i);
    }
    for (let i = 0; i < 5; i++) {
      const res = await pool.request({ method: 'PUT', path: '/upload', body: Readable.from(chunks()) });
      expect(((await res.body.json()) as { bytes: number }).bytes).toBe(10_000);
    }
    // One client connection carried all five requests: one tunnel in.
    expect(pool.stats.connected).toBe(1);
  });

  it('carries 200 concurrent requests over one HBONE connection', async () => {
    // ztunnel stops at 100 streams a connection; this client goes on, to load one inbound session.
    const client = await mesh.hboneClient(id('shop', 'productpage'), undefined, {
      maxStreamsPerSession: 1000,
    });
    const pool = mesh.httpPool(client, waypoint.addresses!.hbone, vip, { connections: 200 });
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        pool
          .request({ method: 'GET', path: `/c/${i}` })
          .then(async (r) => [r.statusCode, await r.body.text()] as const),
      ),
    );
    expect(results.every(([s]) => s === 200)).toBe(true);
    expect(client.sessionCount).toBe(1);
  });

  it('shows the destination the waypoint identity, not the client', async () => {
    const client = await mesh.hboneClient(id('shop', 'productpage'));
    const pool = mesh.httpPool(client, waypoint.addresses!.hbone, vip, { connections: 8 });
    await Promise.all(
      Array.from({ length: 8 }, () => pool.request({ method: 'GET', path: '/' }).then((r) => r.body.text())),
    );
    expect(seenByDestination.length).toBeGreaterThan(0);
    for (const r of seenByDestination) {
      expect(r.peer.uri).toBe(id('shop', 'waypoint'));
      expect(['127.0.2.11', '127.0.2.12']).toContain(r.authority.ip);
      expect(r.authority.port).toBe(9080);
      expect(r.headers.forwarded).toContain('host=reviews.shop.svc.cluster.local');
      expect(r.headers.baggage).toContain('k8s.namespace.name=shop');
      expect(r.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    }
  });

  it("answers 503 with Envoy's body when the endpoint's HBONE port refuses", async () => {
    const client = await mesh.hboneClient(id('shop', 'productpage'));
    const pool = mesh.httpPool(client, waypoint.addresses!.hbone, { ip: '127.0.1.20', port: 9080 });
    const res = await pool.request({ method: 'GET', path: '/' });
    expect(res.statusCode).toBe(503);
    expect(res.headers['x-waypoint-reason']).toBe('upstream_connect_failure');
    // Istio's default route retries a connect failure twice (reset-before-request), and Envoy's
    // body then says the failure was retried.
    expect(await res.body.text()).toBe(
      'upstream connect error or disconnect/reset before headers. retried and the latest reset reason: connection failure',
    );
  });

  it('answers 503 no healthy upstream when no endpoint is ready', async () => {
    const client = await mesh.hboneClient(id('shop', 'productpage'));
    const pool = mesh.httpPool(client, waypoint.addresses!.hbone, { ip: '127.0.1.30', port: 9080 });
    const res = await pool.request({ method: 'GET', path: '/' });
    expect(res.statusCode).toBe(503);
    expect(res.headers['x-waypoint-reason']).toBe('no_healthy_upstream');
    expect(await res.body.text()).toBe('no healthy upstream');
  });

  it('refuses a CONNECT to a destination it does not serve, saying why', async () => {
    const client = await mesh.hboneClient(id('shop', 'productpage'));
    const err = await TestMesh.tunnel(client, waypoint.addresses!.hbone, { ip: '127.0.9.9', port: 80 }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ failure: 'refused', status: 503 });
  });

  it('refuses a client certificate from another CA', async () => {
    const otherCa = await createDevCa();
    const client = await mesh.hboneClient(id('shop', 'productpage'), otherCa);
    const err = await TestMesh.tunnel(client, waypoint.addresses!.hbone, vip).catch((e: unknown) => e);
    expect(err).toMatchObject({ failure: 'connect' });
  });

  it('refuses a client from another trust domain', async () => {
    const foreign = await mesh.ca.issue('spiffe://other.domain/ns/shop/sa/productpage');
    const { memoryCredentials } = await import('../../src/identity/credentials.ts');
    const { HboneClient } = await import('../../src/hbone/client.ts');
    const client = new HboneClient(
      memoryCredentials({ cert: foreign.certChainPem, key: foreign.keyPem, ca: mesh.ca.rootPem }),
    );
    mesh.onClose(() => client.close());
    const err = await TestMesh.tunnel(client, waypoint.addresses!.hbone, vip).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
  });
});
