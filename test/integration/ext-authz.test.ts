// CUSTOM AuthorizationPolicy with ext_authz providers through a real waypoint (l7-semantics.md
// §2.2, §5.1): a real gRPC Authorization/Check server built on filters/authz/proto, a real HTTP
// ext_authz server, a dead provider address, and one that never answers.
// Addresses: waypoint 127.0.120.2; providers 127.0.121.x; VIPs 127.0.122.N:8080; pods 127.0.123.N:8080.
import { createHash } from 'node:crypto';
import http from 'node:http';
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';
import type { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXTERNAL_AUTH_PROTO, PROTO_OPTIONS } from '../../filters/authz/ext-authz.ts';
import { MeshConfigError, parseMeshConfig } from '../../filters/authz/mesh-config.ts';
import type { HboneClient } from '../../src/hbone/client.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { id, listeningPort, serviceYaml, spawnCli, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const WAYPOINT_IP = '127.0.120.2';
const GRPC_IP = '127.0.121.10';
const HTTP_IP = '127.0.121.11';
const DEAD_IP = '127.0.121.12';
const SLOW_IP = '127.0.121.13';
const CLIENT = id('shop', 'sleep');

/** One Service per case: its CUSTOM policy names `provider` and matches paths under /check/. */
const CASES = [
  { name: 'grpc', provider: 'grpc' },
  { name: 'http', provider: 'http' },
  { name: 'down-closed', provider: 'dead' },
  { name: 'down-open', provider: 'dead-open' },
  { name: 'down-status', provider: 'dead-503' },
  { name: 'slow', provider: 'slow' },
  { name: 'unknown', provider: 'nowhere' },
  // includeRequestBodyInCheck: their pods answer with the size and SHA-256 of the body they got.
  { name: 'grpc-body', provider: 'grpc-body' },
  { name: 'grpc-partial', provider: 'grpc-partial' },
  { name: 'http-body', provider: 'http-body' },
] as const;
const BODY_CASES: ReadonlySet<string> = new Set(['grpc-body', 'grpc-partial', 'http-body']);
const vipOf = (i: number) => `127.0.122.${10 + i}`;
const podOf = (i: number) => `127.0.123.${10 + i}`;

interface GrpcSeen {
  principal: string;
  sourceIp: string;
  destination: string;
  method: string;
  path: string;
  host: string;
  headers: Record<string, string>;
  body: string;
  rawBody: Buffer;
}
const grpcSeen: GrpcSeen[] = [];
const httpSeen: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: Buffer }> = [];
let slowCalls = 0;

let mesh: TestMesh;
let waypoint: Waypoint;
let client: HboneClient;
const pools = new Map<number, Pool>();

function pool(i: number): Pool {
  let p = pools.get(i);
  if (!p) {
    p = mesh.httpPool(client, waypoint.addresses!.hbone, { ip: vipOf(i), port: 8080 });
    pools.set(i, p);
  }
  return p;
}

async function send(
  name: (typeof CASES)[number]['name'],
  path: string,
  headers: Record<string, string> = {},
) {
  const i = CASES.findIndex((c) => c.name === name);
  const res = await pool(i).request({ method: 'GET', path, headers });
  const body = await res.body.text();
  return { status: res.statusCode, body, headers: res.headers };
}

async function post(name: (typeof CASES)[number]['name'], path: string, body: Buffer) {
  const i = CASES.findIndex((c) => c.name === name);
  const res = await pool(i).request({
    method: 'POST',
    path,
    headers: { 'content-type': 'application/octet-stream' },
    body,
  });
  return { status: res.statusCode, body: await res.body.text(), headers: res.headers };
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Numbered bytes, so a reordered or lost chunk shows in the hash. */
const pattern = (n: number): Buffer =>
  Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + (i >> 8)) & 0xff));

/** A pod that answers with the size and SHA-256 of the request body it received. */
function hashServer(): http.Server {
  return http.createServer((req, res) => {
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      bytes += c.length;
      hash.update(c);
    });
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ bytes, sha256: hash.digest('hex') }));
    });
  });
}

interface SocketAddr {
  readonly socketAddress: { readonly address: string; readonly portValue: number };
}
/** The CheckRequest fields the test reads (proto-loader's camelCase form). */
interface CheckRequest {
  readonly attributes: {
    readonly source: { readonly principal: string; readonly address: SocketAddr };
    readonly destination: { readonly address: SocketAddr };
    readonly request: {
      readonly http: {
        readonly method: string;
        readonly path: string;
        readonly host: string;
        readonly headers: Record<string, string>;
        readonly body: string;
        readonly rawBody: Buffer;
      };
    };
  };
}

function startGrpcServer(): Promise<{ server: grpc.Server; port: number }> {
  const def = loader.loadSync(EXTERNAL_AUTH_PROTO, PROTO_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    envoy: { service: { auth: { v3: { Authorization: { service: grpc.ServiceDefinition } } } } };
  };
  const server = new grpc.Server();
  server.addService(pkg.envoy.service.auth.v3.Authorization.service, {
    Check(call: grpc.ServerUnaryCall<CheckRequest, unknown>, cb: grpc.sendUnaryData<unknown>) {
      const a = call.request.attributes;
      const h = a.request.http;
      grpcSeen.push({
        principal: a.source.principal,
        sourceIp: a.source.address.socketAddress.address,
        destination: `${a.destination.address.socketAddress.address}:${a.destination.address.socketAddress.portValue}`,
        method: h.method,
        path: h.path,
        host: h.host,
        headers: h.headers,
        body: h.body,
        rawBody: h.rawBody,
      });
      if (h.path.includes('deny')) {
        cb(null, {
          status: { code: 7, message: 'no' },
          deniedResponse: {
            status: { code: 401 },
            headers: [{ header: { key: 'x-authz-why', value: 'grpc says no' } }],
            body: 'denied by grpc',
          },
        });
        return;
      }
      cb(null, {
        status: { code: 0 },
        okResponse: {
          headers: [{ header: { key: 'x-ext-authz-user', value: 'alice' } }],
          headersToRemove: ['x-secret'],
        },
      });
    },
  });
  return new Promise((resolve, reject) =>
    server.bindAsync(`${GRPC_IP}:0`, grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve({ server, port }),
    ),
  );
}

async function listen(server: http.Server, ip: string): Promise<number> {
  await new Promise<void>((r) => server.listen(0, ip, () => r()));
  mesh.onClose(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return listeningPort(server);
}

beforeAll(async () => {
  mesh = await TestMesh.create();
  const g = await startGrpcServer();
  mesh.onClose(() => g.server.forceShutdown());
  const httpPort = await listen(
    http.createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      httpSeen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
      });
      if (req.url?.includes('deny')) {
        res.writeHead(429, {
          'x-deny-why': 'http says no',
          'x-internal': 'hidden',
          'content-type': 'text/plain',
        });
        res.end('denied by http');
        return;
      }
      res.writeHead(200, { 'x-ext-authz-user': 'bob', 'x-not-forwarded': '1' });
      res.end();
    }),
    HTTP_IP,
  );
  const slowPort = await listen(
    http.createServer(() => {
      slowCalls++; // never answers
    }),
    SLOW_IP,
  );
  const docs = [
    waypointYaml(),
    // The gRPC provider is named by Service FQDN: the waypoint dials its ClusterIP.
    `apiVersion: v1
kind: Namespace
metadata:
  name: authz
---
apiVersion: v1
kind: Service
metadata:
  name: ext-authz
  namespace: authz
spec:
  clusterIP: ${GRPC_IP}
  ports:
    - name: grpc
      port: ${g.port}
`,
  ];
  for (const [i, c] of CASES.entries()) {
    docs.push(
      serviceYaml({ name: c.name, vip: vipOf(i), port: 8080, pods: [{ name: `${c.name}-a`, ip: podOf(i) }] }),
    );
    docs.push(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ${c.name}-custom
  namespace: shop
spec:
  targetRefs:
    - kind: Service
      group: ""
      name: ${c.name}
  action: CUSTOM
  provider:
    name: ${c.provider}
  rules:
    - to: [{operation: {paths: ["/check/*"]}}]
`);
  }
  await mesh.writeConfig('mesh.yaml', docs.join('---\n'));
  for (const [i, c] of CASES.entries())
    await mesh.pod(
      podOf(i),
      8080,
      BODY_CASES.has(c.name) ? hashServer() : TestMesh.echoServer(`${c.name}-a`),
      id('shop', c.name),
    );
  const extensionProviders = parseMeshConfig(`
extensionProviders:
  - name: grpc
    envoyExtAuthzGrpc:
      service: ext-authz.authz.svc.cluster.local
      port: ${g.port}
      timeout: 5s
  - name: http
    envoyExtAuthzHttp:
      service: ${HTTP_IP}
      port: ${httpPort}
      pathPrefix: /authz
      includeRequestHeadersInCheck: [x-user]
      includeAdditionalHeadersInCheck: {x-from: waypoint}
      headersToUpstreamOnAllow: ["x-ext-authz-*"]
      headersToDownstreamOnDeny: ["x-deny-*"]
  - name: dead
    envoyExtAuthzGrpc: {service: ${DEAD_IP}, port: 9, timeout: 2s}
  - name: dead-open
    envoyExtAuthzHttp: {service: ${DEAD_IP}, port: 9, failOpen: true}
  - name: dead-503
    envoyExtAuthzHttp: {service: ${DEAD_IP}, port: 9, statusOnError: "503"}
  - name: slow
    envoyExtAuthzHttp: {service: ${SLOW_IP}, port: ${slowPort}, timeout: 0.3s}
  - name: grpc-body
    envoyExtAuthzGrpc:
      service: ext-authz.authz.svc.cluster.local
      port: ${g.port}
      includeRequestBodyInCheck: {maxRequestBytes: 4096}
  - name: grpc-partial
    envoyExtAuthzGrpc:
      service: ext-authz.authz.svc.cluster.local
      port: ${g.port}
      includeRequestBodyInCheck: {maxRequestBytes: 1000, allowPartialMessage: true, packAsBytes: true}
  - name: http-body
    envoyExtAuthzHttp:
      service: ${HTTP_IP}
      port: ${httpPort}
      pathPrefix: /authz
      includeRequestBodyInCheck: {maxRequestBytes: 1000, allowPartialMessage: true}
  - name: zipkin
    zipkin: {service: zipkin.istio-system.svc.cluster.local, port: 9411}
`);
  waypoint = await mesh.startWaypoint({
    ip: WAYPOINT_IP,
    extensionProviders,
  });
  client = await mesh.hboneClient(CLIENT);
});
afterAll(() => mesh.close());

describe('CUSTOM AuthorizationPolicy, gRPC provider', () => {
  it('allow: 200, the provider header reaches the upstream, headersToRemove is applied', async () => {
    const before = grpcSeen.length;
    const res = await send('grpc', '/check/ok?q=1', { 'x-secret': 's', 'x-user': 'u' });
    expect(res.status).toBe(200);
    const seen = JSON.parse(res.body).headers as Record<string, string>;
    expect(seen['x-ext-authz-user']).toBe('alice');
    expect(seen['x-secret']).toBeUndefined();
    expect(seen['x-user']).toBe('u');
    expect(grpcSeen.length).toBe(before + 1);
    const c = grpcSeen.at(-1)!;
    expect(c.principal).toBe(CLIENT);
    expect(c.destination).toBe(`${vipOf(0)}:8080`);
    expect(c.method).toBe('GET');
    expect(c.path).toBe('/check/ok?q=1');
    expect(c.host).toBe(`${vipOf(0)}:8080`);
    expect(c.headers['x-user']).toBe('u');
    expect(c.headers[':method']).toBe('GET');
  });

  it("deny: the provider's status, headers and body", async () => {
    const res = await send('grpc', '/check/deny');
    expect(res.status).toBe(401);
    expect(res.body).toBe('denied by grpc');
    expect(res.headers['x-authz-why']).toBe('grpc says no');
    expect(res.headers['x-waypoint-reason']).toBe('ext_authz_denied');
  });

  it('a request no CUSTOM rule matches never reaches the provider', async () => {
    const before = grpcSeen.length;
    const res = await send('grpc', '/other/deny');
    expect(res.status).toBe(200);
    expect(grpcSeen.length).toBe(before);
  });
});

describe('CUSTOM AuthorizationPolicy, HTTP provider', () => {
  it('allow: 200; pathPrefix + path, allowed and additional headers sent; allowed headers upstream', async () => {
    const res = await send('http', '/check/ok', { 'x-user': 'bob', 'x-other': 'no' });
    expect(res.status).toBe(200);
    const seen = JSON.parse(res.body).headers as Record<string, string>;
    expect(seen['x-ext-authz-user']).toBe('bob');
    expect(seen['x-not-forwarded']).toBeUndefined();
    const c = httpSeen.at(-1)!;
    expect(c.method).toBe('GET');
    expect(c.url).toBe('/authz/check/ok');
    expect(c.headers['x-user']).toBe('bob');
    expect(c.headers['x-from']).toBe('waypoint');
    expect(c.headers['x-other']).toBeUndefined();
  });

  it("deny: the provider's status and body, only headersToDownstreamOnDeny headers", async () => {
    const res = await send('http', '/check/deny');
    expect(res.status).toBe(429);
    expect(res.body).toBe('denied by http');
    expect(res.headers['x-deny-why']).toBe('http says no');
    expect(res.headers['x-internal']).toBeUndefined();
    expect(res.headers['x-waypoint-reason']).toBe('ext_authz_denied');
  });

  it('a request no CUSTOM rule matches never reaches the provider', async () => {
    const before = httpSeen.length;
    expect((await send('http', '/open')).status).toBe(200);
    expect(httpSeen.length).toBe(before);
  });
});

describe('includeRequestBodyInCheck', () => {
  it('gRPC: the provider sees the body as a string, the upstream gets it too', async () => {
    const before = grpcSeen.length;
    const text = Buffer.from('{"amount": 42, "note": "héllo"}');
    const res = await post('grpc-body', '/check/pay', text);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ bytes: text.length, sha256: sha(text) });
    expect(grpcSeen.length).toBe(before + 1);
    const c = grpcSeen.at(-1)!;
    expect(c.body).toBe(text.toString('utf8'));
    expect(c.rawBody.length).toBe(0);
    expect(c.headers['x-envoy-auth-partial-body']).toBe('false');
  });

  it('gRPC: a request without a body is checked with an empty body', async () => {
    const res = await send('grpc-body', '/check/get');
    expect(res.status).toBe(200);
    const c = grpcSeen.at(-1)!;
    expect(c.path).toBe('/check/get');
    expect(c.body).toBe('');
  });

  it('over maxRequestBytes without allowPartialMessage: 413, the provider is not asked', async () => {
    const before = grpcSeen.length;
    const res = await post('grpc-body', '/check/big', pattern(10_000));
    expect(res.status).toBe(413);
    expect(res.body).toBe('Payload Too Large');
    expect(res.headers['x-waypoint-reason']).toBe('request_body_too_large');
    expect(grpcSeen.length).toBe(before);
    // The connection is still usable after the unread rest of the body.
    expect((await post('grpc-body', '/check/small', Buffer.from('ok'))).status).toBe(200);
  });

  it('allowPartialMessage, packAsBytes: the provider sees exactly maxRequestBytes as raw_body; the upstream the whole body', async () => {
    const before = grpcSeen.length;
    const data = pattern(1024 * 1024 + 17);
    const res = await post('grpc-partial', '/check/upload', data);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ bytes: data.length, sha256: sha(data) });
    expect(grpcSeen.length).toBe(before + 1);
    const c = grpcSeen.at(-1)!;
    expect(c.rawBody.length).toBe(1000);
    expect(Buffer.from(c.rawBody).equals(data.subarray(0, 1000))).toBe(true);
    expect(c.body).toBe('');
    expect(c.headers['x-envoy-auth-partial-body']).toBe('true');
  });

  it('HTTP: the check request carries the body (cut at maxRequestBytes); the upstream the whole body', async () => {
    const small = Buffer.from('name=alice');
    let res = await post('http-body', '/check/form', small);
    expect(res.status).toBe(200);
    let c = httpSeen.at(-1)!;
    expect(c.method).toBe('POST');
    expect(c.url).toBe('/authz/check/form');
    expect(c.body.equals(small)).toBe(true);
    expect(c.headers['content-length']).toBe(String(small.length));
    expect(c.headers['x-envoy-auth-partial-body']).toBe('false');

    const data = pattern(300_000);
    res = await post('http-body', '/check/upload', data);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ bytes: data.length, sha256: sha(data) });
    c = httpSeen.at(-1)!;
    expect(c.body.equals(data.subarray(0, 1000))).toBe(true);
    expect(c.headers['x-envoy-auth-partial-body']).toBe('true');
  });
});

describe('provider failures', () => {
  it('unreachable, failOpen false: 403 (statusOnError default), reason ext_authz_error', async () => {
    const res = await send('down-closed', '/check/x');
    expect(res.status).toBe(403);
    expect(res.headers['x-waypoint-reason']).toBe('ext_authz_error');
  });
  it('unreachable, failOpen true: 200', async () => {
    expect((await send('down-open', '/check/x')).status).toBe(200);
  });
  it('unreachable with statusOnError 503: 503', async () => {
    const res = await send('down-status', '/check/x');
    expect(res.status).toBe(503);
    expect(res.headers['x-waypoint-reason']).toBe('ext_authz_error');
  });
  it("timeout: the provider's timeout ends the check with statusOnError", async () => {
    // The slow provider would allow; ext_authz_error says the provider's timeout ended the check.
    const res = await send('slow', '/check/x');
    expect(res.status).toBe(403);
    expect(res.headers['x-waypoint-reason']).toBe('ext_authz_error');
    expect(slowCalls).toBeGreaterThan(0);
  });
  it('a provider the mesh config does not define denies matching requests (RBAC deny) and warns', async () => {
    const res = await send('unknown', '/check/x');
    expect(res.status).toBe(403);
    expect(res.headers['x-waypoint-reason']).toBe('authz_denied');
    expect((await send('unknown', '/open')).status).toBe(200);
    const messages = waypoint.snapshot!.messages.map((m) => m.message).join('\n');
    expect(messages).toMatch(/unknown-custom: spec\.provider: ext_authz provider "nowhere" is not defined/);
  });
});

describe('mesh config', () => {
  it('rejects bad providers with the field named', () => {
    expect(() =>
      parseMeshConfig('extensionProviders: [{name: a, envoyExtAuthzGrpc: {service: x, port: 1}}]'),
    ).toThrow(/extensionProviders\[0\] \(a\)\.envoyExtAuthzGrpc\.service: expected an IP or a Service FQDN/);
    expect(() =>
      parseMeshConfig(
        'extensionProviders: [{name: a, envoyExtAuthzHttp: {service: 127.0.0.1, port: 70000}}]',
      ),
    ).toThrow(/\.port: expected a port/);
    expect(() =>
      parseMeshConfig(
        'extensionProviders: [{name: a, envoyExtAuthzHttp: {service: 127.0.0.1, port: 80, timeout: soon}}]',
      ),
    ).toThrow(MeshConfigError);
  });
  it('reads the istio ConfigMap form and defaults (600 s timeout, 403 on error)', () => {
    const [p] = parseMeshConfig(`apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    extensionProviders:
      - name: ext
        envoyExtAuthzGrpc: {service: ext.authz.svc.cluster.local, port: 9000}
`);
    expect(p).toMatchObject({
      kind: 'grpc',
      name: 'ext',
      timeoutMs: 600_000,
      statusOnError: 403,
      failOpen: false,
    });
  });
  it('run --mesh-config with an invalid file exits 2 naming the problem', async () => {
    const file = await mesh.writeConfig(
      '../bad-mesh.yaml',
      'extensionProviders: [{name: a, envoyExtAuthzGrpc: {port: 1}}]',
    );
    const proc = spawnCli([
      'run',
      '--config',
      mesh.configDir,
      '--gateway',
      'shop/waypoint',
      '--cert',
      'c',
      '--key',
      'k',
      '--ca',
      'a',
      '--mesh-config',
      file,
    ]);
    expect(await proc.exited).toBe(2);
    expect(proc.stderr()).toMatch(
      /--mesh-config: .*extensionProviders\[0\] \(a\)\.envoyExtAuthzGrpc\.service: required/,
    );
  });
});
