// Hostile HTTP/1.1 inside real tunnels, one regression test per hole found (issue 9): a request
// that used to kill the process, an AuthorizationPolicy bypass with an absolute-form target,
// request-target forms Envoy refuses, duplicate Host headers, and the forwarded host= on pooled
// tunnels of two Services that share one endpoint.
import http from 'node:http';
import http2, { type ClientHttp2Stream } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HboneClient } from '../../src/hbone/client.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';
import { ResponseReader } from '../helpers/raw-http.ts';

const WAYPOINT_IP = '127.9.1.1';
const WEB = { ip: '127.9.1.10', port: 8080 };
const ALIAS = { ip: '127.9.1.11', port: 8080 };
const POD_IP = '127.9.1.20';

const DENY_ADMIN = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-admin
  namespace: shop
spec:
  targetRefs:
    - kind: Service
      group: ""
      name: web
  action: DENY
  rules:
    - to:
        - operation:
            paths: ["/admin*"]
`;

/** A second Service selecting web's pods: two Services, one endpoint. */
const ALIAS_SERVICE = `apiVersion: v1
kind: Service
metadata:
  name: alias
  namespace: shop
spec:
  clusterIP: ${ALIAS.ip}
  selector:
    app: web
  ports:
    - name: http
      port: ${ALIAS.port}
      targetPort: ${WEB.port}
`;

interface Seen {
  method: string;
  url: string;
  host: string | undefined;
}

describe('hostile HTTP/1.1 through the waypoint', () => {
  let mesh: TestMesh;
  let waypoint: Waypoint;
  let client: HboneClient;
  const seen: Seen[] = [];
  /** `forwarded` of each CONNECT the pod's ztunnel stand-in accepted. */
  const forwarded: string[] = [];

  beforeAll(async () => {
    mesh = await TestMesh.create();
    await mesh.writeConfig(
      'mesh.yaml',
      [
        waypointYaml(),
        serviceYaml({ name: 'web', vip: WEB.ip, port: WEB.port, pods: [{ name: 'web-a', ip: POD_IP }] }),
        ALIAS_SERVICE,
        DENY_ADMIN,
      ].join('---\n'),
    );
    const backend = http.createServer((req, res) => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', host: req.headers.host });
      req.resume();
      req.on('end', () => res.end(JSON.stringify({ url: req.url, host: req.headers.host })));
    });
    await mesh.pod(POD_IP, WEB.port, backend, id('shop', 'web'), {
      onTunnel: (r) => forwarded.push(String(r.headers.forwarded ?? '')),
    });
    waypoint = await mesh.startWaypoint({ ip: WAYPOINT_IP });
    client = await mesh.hboneClient(id('shop', 'curl'));
  });
  afterAll(() => mesh.close());

  function tunnel(to = WEB): Promise<ClientHttp2Stream> {
    return TestMesh.tunnel(client, waypoint.addresses!.hbone, to);
  }

  /** Sends raw bytes in a fresh tunnel and reads one response. */
  async function raw(bytes: string, to = WEB): Promise<{ status: number; headers: Record<string, string> }> {
    const t = await tunnel(to);
    const reader = new ResponseReader(t);
    t.write(bytes);
    const res = await reader.next();
    t.destroy();
    return res;
  }

  /** A legitimate request still gets 200: the waypoint is alive. */
  async function stillServes(): Promise<void> {
    const res = await raw('GET /ok HTTP/1.1\r\nHost: web.shop\r\n\r\n');
    expect(res.status).toBe(200);
  }

  it('survives OPTIONS * with a Content-Length and a tunnel reset before the body', async () => {
    const t = await tunnel();
    t.on('error', () => {});
    const closed = new Promise((r) => t.once('close', r));
    t.write('OPTIONS * HTTP/1.1\r\nHost: web.shop\r\nContent-Length: 10\r\n\r\n');
    // Let the head reach the engine and its upstream dispatch before the reset.
    await new Promise((r) => t.once('data', r).once('close', r).once('end', r));
    t.close(http2.constants.NGHTTP2_CANCEL);
    await closed;
    await stillServes();
  });

  it('survives OPTIONS * with a Content-Length and a reset before the answer', async () => {
    const t = await tunnel();
    t.on('error', () => {});
    const closed = new Promise((r) => t.once('close', r));
    t.write('OPTIONS * HTTP/1.1\r\nHost: web.shop\r\nContent-Length: 10\r\n\r\n');
    setImmediate(() => t.close(http2.constants.NGHTTP2_CANCEL));
    await closed;
    await stillServes();
  });

  it('answers POST with a scheme undici cannot send (htp://) with 400 before reading the body', async () => {
    const res = await raw('POST htp://web/x HTTP/1.1\r\nHost: web.shop\r\nContent-Length: 5\r\n\r\nhello');
    expect(res.status).toBe(400);
    expect(res.headers['x-waypoint-reason']).toBe('downstream_bad_request_target');
    expect(seen.some((s) => s.url.includes('htp:'))).toBe(false);
    await stillServes();
  });

  it('denies GET http://svc/admin under a DENY on /admin*: absolute-form becomes origin-form', async () => {
    const before = seen.length;
    const res = await raw('GET http://web.shop/admin HTTP/1.1\r\nHost: web.shop\r\n\r\n');
    expect(res.status).toBe(403);
    expect(res.headers['x-waypoint-reason']).toBe('authz_denied');
    expect(seen.slice(before).some((s) => s.url.includes('admin'))).toBe(false);
  });

  it('sends an allowed absolute-form request upstream in origin-form, authority from the URI', async () => {
    const before = seen.length;
    const res = await raw('GET http://web.shop:8080/public?q=1 HTTP/1.1\r\nHost: other\r\n\r\n');
    expect(res.status).toBe(200);
    expect(seen.slice(before)).toEqual([{ method: 'GET', url: '/public?q=1', host: 'web.shop:8080' }]);
  });

  it.each([
    ['asterisk-form with GET', 'GET * HTTP/1.1'],
    ['authority-form without CONNECT', 'GET web.shop:8080 HTTP/1.1'],
    ['a relative path', 'GET admin HTTP/1.1'],
    ['absolute-form with a non-http scheme', 'GET ftp://web.shop/admin HTTP/1.1'],
    ['absolute-form with userinfo', 'GET http://u@web.shop/admin HTTP/1.1'],
    ['absolute-form without a host', 'GET http:///admin HTTP/1.1'],
  ])('refuses %s with 400', async (_name, line) => {
    const before = seen.length;
    const res = await raw(`${line}\r\nHost: web.shop\r\n\r\n`);
    expect(res.status).toBe(400);
    // Node's parser refuses some forms itself (a protocol error), the intake check the rest.
    expect(['downstream_bad_request_target', 'downstream_protocol_error']).toContain(
      res.headers['x-waypoint-reason'],
    );
    expect(seen.length).toBe(before);
  });

  it('answers OPTIONS * itself with 404, as Envoy does (absolute_path_rejected)', async () => {
    const before = seen.length;
    const res = await raw('OPTIONS * HTTP/1.1\r\nHost: web.shop\r\n\r\n');
    expect(res.status).toBe(404);
    expect(res.headers['x-waypoint-reason']).toBe('downstream_asterisk_form');
    expect(seen.length).toBe(before);
  });

  it('refuses a request with two Host headers with 400', async () => {
    const before = seen.length;
    const res = await raw('GET /ok HTTP/1.1\r\nHost: web.shop\r\nHost: evil.example\r\n\r\n');
    expect(res.status).toBe(400);
    expect(res.headers['x-waypoint-reason']).toBe('downstream_duplicate_host');
    expect(seen.length).toBe(before);
  });

  async function h2status(headers: http2.OutgoingHttpHeaders): Promise<number | string> {
    const t = await tunnel();
    const session = http2.connect(`http://${WEB.ip}:${WEB.port}`, { createConnection: () => t as never });
    session.on('error', () => {});
    try {
      return await new Promise<number | string>((resolve) => {
        const s = session.request(headers);
        s.on('response', (h) => resolve(Number(h[':status'])));
        s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
        s.resume();
      });
    } finally {
      session.destroy();
    }
  }

  it('holds HTTP/2 :path to the same rules: absolute or relative paths are refused', async () => {
    const before = seen.length;
    const base = { ':method': 'GET', ':authority': 'web.shop' };
    // nghttp2 resets these itself (a stream protocol error), as Envoy's codec does.
    expect(await h2status({ ...base, ':path': 'http://web.shop/admin' })).toBe('ERR_HTTP2_STREAM_ERROR');
    expect(await h2status({ ...base, ':path': 'admin' })).toBe('ERR_HTTP2_STREAM_ERROR');
    expect(await h2status({ ...base, ':method': 'OPTIONS', ':path': '*' })).toBe(404);
    expect(await h2status({ ...base, ':path': '/ok' })).toBe(200);
    expect(seen.slice(before).map((s) => s.url)).toEqual(['/ok']);
  });

  it('sends each Service its own forwarded host= over pooled tunnels to one shared endpoint', async () => {
    expect((await raw('GET /ok HTTP/1.1\r\nHost: web.shop\r\n\r\n')).status).toBe(200);
    expect((await raw('GET /ok HTTP/1.1\r\nHost: alias.shop\r\n\r\n', ALIAS)).status).toBe(200);
    expect((await raw('GET /ok HTTP/1.1\r\nHost: web.shop\r\n\r\n')).status).toBe(200);
    const hosts = new Set(forwarded.map((f) => /host=([^;]+)/.exec(f)?.[1]));
    expect(hosts).toEqual(new Set(['web.shop.svc.cluster.local', 'alias.shop.svc.cluster.local']));
  });
});
