// Gateway API mesh conformance (MESH-HTTP, l7-semantics.md §6.2) through a real waypoint, black
// box: the fixture of §6.1 on loopback (Services echo, echo-v1, echo-v2; pods answering with their
// name), each conformance test's routes loaded in turn, the same requests and expectations. Plus
// the edge cases of §4.4: zero weight, unresolved and endpoint-less backends, unsupported filters,
// and rule names in the access log. The GRPCRoute cases are in routing-conformance-grpc.test.ts.
import { rename, writeFile } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoutingConfig } from '../../filters/routing/model.ts';
import type { HostPort } from '../../src/hbone/authority.ts';
import type { HboneClient } from '../../src/hbone/client.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { eventually, getText, id, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const NS = 'gateway-conformance-mesh';
const CONSUMER_NS = 'gateway-conformance-mesh-consumer';
const WAYPOINT_ID = id(NS, 'waypoint');
const WAYPOINT_IP = '127.0.154.1';
const VIP = {
  echo: '127.0.152.1',
  'echo-v1': '127.0.152.2',
  'echo-v2': '127.0.152.3',
  idle: '127.0.152.4',
} as const;
type ServiceName = keyof typeof VIP;
const POD = { v1: '127.0.153.1', v2: '127.0.153.2', idle: '127.0.153.3' } as const;

/** A Service with the conformance ports (§6.1), selecting pods by labels. */
function service(
  name: string,
  vip: string,
  selector: Record<string, string>,
  grpcAppProtocol?: string,
): string {
  return `apiVersion: v1
kind: Service
metadata:
  name: ${name}
  namespace: ${NS}
spec:
  clusterIP: ${vip}
  selector: ${JSON.stringify(selector)}
  ports:
    - { name: http, port: 80, targetPort: 8080, appProtocol: http }
    - { name: http-alt, port: 8080, targetPort: 8080, appProtocol: http }
    - { name: tcp, port: 9090, targetPort: 9090 }
    - { name: grpc, port: 7070, targetPort: 7070${grpcAppProtocol ? `, appProtocol: ${grpcAppProtocol}` : ''} }
`;
}

function pod(name: string, ip: string, labels: Record<string, string>, sa: string, ready = true): string {
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ${NS}
  labels: ${JSON.stringify(labels)}
spec:
  serviceAccountName: ${sa}
  containers: [{ name: app, image: echo }]
status:
  phase: Running
  podIP: ${ip}
  conditions: [{ type: Ready, status: "${ready ? 'True' : 'False'}" }]
`;
}

const FIXTURE = [
  waypointYaml(NS, 'waypoint', 'all'),
  `apiVersion: v1
kind: Namespace
metadata:
  name: ${CONSUMER_NS}
`,
  service('echo', VIP.echo, { app: 'echo' }, 'kubernetes.io/h2c'),
  service('echo-v1', VIP['echo-v1'], { app: 'echo', version: 'v1' }),
  service('echo-v2', VIP['echo-v2'], { app: 'echo', version: 'v2' }),
  service('idle', VIP.idle, { app: 'idle' }),
  pod('echo-v1-0', POD.v1, { app: 'echo', version: 'v1' }, 'echo-v1'),
  pod('echo-v2-0', POD.v2, { app: 'echo', version: 'v2' }, 'echo-v2'),
  pod('idle-0', POD.idle, { app: 'idle' }, 'idle', false),
].join('---\n');

let mesh: TestMesh;
let waypoint: Waypoint;
const accessLog: string[] = [];
const clients = new Map<string, HboneClient>();
const pools = new Map<string, Pool>();

beforeAll(async () => {
  mesh = await TestMesh.create();
  await mesh.writeConfig('fixture.yaml', FIXTURE);
  await mesh.writeConfig('routes.yaml', '');
  for (const [ip, name, sa] of [
    [POD.v1, 'echo-v1-0', 'echo-v1'],
    [POD.v2, 'echo-v2-0', 'echo-v2'],
  ] as const)
    await mesh.pod(ip, 8080, TestMesh.echoServer(name), id(NS, sa));
  const logStream = new PassThrough();
  let partial = '';
  logStream.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    accessLog.push(...lines);
  });
  waypoint = await mesh.startWaypoint({
    gateway: { namespace: NS, name: 'waypoint' },
    identity: WAYPOINT_ID,
    ip: WAYPOINT_IP,
    accessLog: 'all',
    accessLogStream: logStream,
  });
  for (const ns of [NS, CONSUMER_NS]) clients.set(ns, await mesh.hboneClient(id(ns, 'echo-v1')));
});
afterAll(() => mesh.close());

/** Replaces the routes in force and waits until the waypoint reports exactly these routes. */
async function useRoutes(yaml: string): Promise<void> {
  const names = [...yaml.matchAll(/^ {2}name: (\S+)\n {2}namespace: (\S+)$/gm)]
    .map((m) => `${m[2]}/${m[1]}`)
    .sort();
  // Renamed into place so the file watcher never reads half a file.
  const tmp = join(mesh.dir, 'routes.tmp');
  await writeFile(tmp, yaml);
  await rename(tmp, join(mesh.configDir, 'routes.yaml'));
  await waypoint.reload();
  await eventually(
    () => {
      const statuses = (waypoint.snapshot?.filters.routing as RoutingConfig | undefined)?.statuses ?? [];
      const got = statuses.map((s) => `${s.namespace}/${s.name}`).sort();
      return JSON.stringify(got) === JSON.stringify(names);
    },
    `routes ${names.join(', ')} in force`,
  );
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The backend's echo, when the backend answered. */
  pod: string | undefined;
  path: string | undefined;
  sent: Record<string, string>;
}

/** One request through the waypoint: a pooled tunnel per client namespace and destination. */
async function request(opts: {
  to: ServiceName | HostPort;
  path: string;
  port?: number;
  host?: string;
  headers?: Record<string, string>;
  from?: string;
}): Promise<Reply> {
  const dest = typeof opts.to === 'string' ? { ip: VIP[opts.to], port: opts.port ?? 80 } : opts.to;
  const from = opts.from ?? NS;
  const key = `${from}|${dest.ip}:${dest.port}`;
  let pool = pools.get(key);
  if (!pool) {
    const client = clients.get(from)!;
    const hbone = waypoint.addresses!.hbone;
    pool = new Pool(`http://${dest.ip}:${dest.port}`, {
      connect: (_o, cb) => {
        TestMesh.tunnel(client, hbone, dest, WAYPOINT_ID).then(
          (s) => cb(null, s as never),
          (e: Error) => cb(e, null),
        );
      },
    });
    mesh.onClose(() => pool?.destroy());
    pools.set(key, pool);
  }
  const res = await pool.request({
    method: 'GET',
    path: opts.path,
    headers: { host: opts.host ?? (typeof opts.to === 'string' ? opts.to : 'echo'), ...opts.headers },
  });
  const text = await res.body.text();
  let echo: { pod?: string; path?: string; headers?: Record<string, string> } = {};
  if (res.headers['content-type'] === 'application/json') echo = JSON.parse(text);
  return {
    status: res.statusCode,
    headers: res.headers,
    text,
    pod: echo.pod,
    path: echo.path,
    sent: echo.headers ?? {},
  };
}

/** The conformance harness's checks (§6.1): status, backend pod prefix, echoed and absent headers. */
function expectBackend(
  r: Reply,
  backend: 'echo-v1' | 'echo-v2',
  want: { headers?: Record<string, string>; absent?: string[]; path?: string } = {},
): void {
  expect(r.status).toBe(200);
  expect(r.pod?.startsWith(`${backend}-`), `pod ${r.pod}`).toBe(true);
  for (const [k, v] of Object.entries(want.headers ?? {})) expect(r.sent[k.toLowerCase()], k).toBe(v);
  for (const k of want.absent ?? []) expect(r.sent[k.toLowerCase()], k).toBeUndefined();
  if (want.path !== undefined) expect(r.path).toBe(want.path);
}

/** An HTTPRoute on `echo` port 80 (unless parents are given) in the mesh namespace. */
function httpRoute(
  name: string,
  rules: string,
  parents = '[{ group: "", kind: Service, name: echo, port: 80 }]',
): string {
  return `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: ${name}
  namespace: ${NS}
spec:
  parentRefs: ${parents}
  rules:
${rules}`;
}

const prefix = (p: string) => `[{ path: { type: PathPrefix, value: ${p} } }]`;
const to = (svc: string, port: number) => `[{ name: ${svc}, port: ${port} }]`;
const set = (pairs: [string, string][]) => pairs.map(([n, v]) => `{ name: ${n}, value: ${v} }`).join(', ');

describe('MeshBasic', () => {
  beforeAll(() => useRoutes(''));
  it('GET echo/ answers 200 with no routes at all', async () => {
    const r = await request({ to: 'echo', path: '/' });
    expect(r.status).toBe(200);
    expect(r.pod).toMatch(/^echo-v[12]-/);
  });
});

describe('MeshHTTPRouteSimpleSameNamespace', () => {
  beforeAll(() => useRoutes(httpRoute('mesh-simple', `    - backendRefs: ${to('echo-v1', 8080)}\n`)));
  it('sends GET echo/ to echo-v1', async () => {
    for (let i = 0; i < 10; i++) expectBackend(await request({ to: 'echo', path: '/' }), 'echo-v1');
  });
});

describe('MeshTrafficSplit', () => {
  beforeAll(() =>
    useRoutes(
      httpRoute(
        'mesh-split',
        `    - matches: [{ path: { type: Exact, value: /v1 } }]
      backendRefs: ${to('echo-v1', 80)}
    - matches: [{ path: { type: Exact, value: /v2 } }]
      backendRefs: ${to('echo-v2', 80)}
`,
        '[{ group: "", kind: Service, name: echo }]',
      ),
    ),
  );
  it('sends /v1 to echo-v1 and /v2 to echo-v2', async () => {
    expectBackend(await request({ to: 'echo', path: '/v1' }), 'echo-v1');
    expectBackend(await request({ to: 'echo', path: '/v2' }), 'echo-v2');
  });
});

describe('MeshHTTPRouteMatching', () => {
  beforeAll(() =>
    useRoutes(
      httpRoute(
        'mesh-matching',
        `    - matches: [{ path: { type: PathPrefix, value: / } }, { headers: [{ name: version, value: one }] }]
      backendRefs: ${to('echo-v1', 8080)}
    - matches: [{ path: { type: PathPrefix, value: /v2 } }, { headers: [{ name: version, value: two }] }]
      backendRefs: ${to('echo-v2', 8080)}
`,
      ),
    ),
  );
  const cases: [string, Record<string, string>, 'echo-v1' | 'echo-v2'][] = [
    ['/', {}, 'echo-v1'],
    ['/example', {}, 'echo-v1'],
    ['/', { Version: 'one' }, 'echo-v1'],
    ['/v2', {}, 'echo-v2'],
    ['/v2/example', {}, 'echo-v2'],
    ['/', { Version: 'two' }, 'echo-v2'],
    ['/v2/', {}, 'echo-v2'],
    ['/v2example', {}, 'echo-v1'],
    ['/foo/v2/example', {}, 'echo-v1'],
  ];
  for (const [path, headers, backend] of cases) {
    it(`sends ${path} ${JSON.stringify(headers)} to ${backend}`, async () => {
      expectBackend(await request({ to: 'echo', path, headers }), backend);
    });
  }
});

describe('MeshHTTPRouteQueryParamMatching', () => {
  const q = (name: string, value: string) => `{ name: ${name}, value: ${value} }`;
  beforeAll(() =>
    useRoutes(
      httpRoute(
        'mesh-query-param',
        `    - matches: [{ queryParams: [${q('animal', 'whale')}] }]
      backendRefs: ${to('echo-v1', 8080)}
    - matches: [{ queryParams: [${q('animal', 'dolphin')}] }]
      backendRefs: ${to('echo-v2', 8080)}
    - matches: [{ path: { value: /path1 }, queryParams: [${q('animal', 'whale')}] }]
      backendRefs: ${to('echo-v1', 8080)}
    - matches: [{ headers: [${q('version', 'one')}], queryParams: [${q('animal', 'whale')}] }]
      backendRefs: ${to('echo-v2', 8080)}
    - matches:
        - { path: { value: /path3 }, queryParams: [${q('animal', 'shark')}] }
        - { path: { value: /path4 }, headers: [${q('version', 'three')}], queryParams: [${q('animal', 'kraken')}] }
      backendRefs: ${to('echo-v1', 8080)}
    - matches: [{ path: { value: /path5 } }]
      backendRefs: ${to('echo-v1', 8080)}
    - matches: [{ queryParams: [${q('animal', 'hydra')}] }]
      backendRefs: ${to('echo-v2', 8080)}
`,
      ),
    ),
  );
  const cases: [string, Record<string, string>, 'echo-v1' | 'echo-v2' | 404][] = [
    ['/?animal=whale', {}, 'echo-v1'],
    ['/?animal=dolphin', {}, 'echo-v2'],
    ['/?animal=whale&otherparam=irrelevant', {}, 'echo-v1'],
    ['/?animal=dolphin&color=yellow', {}, 'echo-v2'],
    ['/?color=blue', {}, 404],
    ['/?animal=dog', {}, 404],
    ['/?animal=whaledolphin', {}, 404],
    ['/', {}, 404],
    ['/path1?animal=whale', {}, 'echo-v1'],
    ['/?animal=whale', { version: 'one' }, 'echo-v2'],
    ['/path3?animal=shark', {}, 'echo-v1'],
    ['/path4?animal=kraken', { version: 'three' }, 'echo-v1'],
    ['/?animal=shark', {}, 404],
    ['/path4?animal=kraken', {}, 404],
    ['/path5?animal=hydra', {}, 'echo-v1'],
  ];
  for (const [path, headers, want] of cases) {
    it(`answers ${path} ${JSON.stringify(headers)} with ${want}`, async () => {
      const r = await request({ to: 'echo', path, headers });
      if (want === 404) {
        expect(r.status).toBe(404);
        expect(r.headers['x-waypoint-reason']).toBe('route_not_found');
      } else expectBackend(r, want);
    });
  }
});

/** The header-modifier operations of httproute-request-header-modifier(-backend).yaml. */
const HEADER_OPS: Record<string, string> = {
  '/set': `set: [${set([['X-Header-Set', 'set-overwrites-values']])}]`,
  '/add': `add: [${set([['X-Header-Add', 'add-appends-values']])}]`,
  '/remove': 'remove: [X-Header-Remove]',
  '/multiple': `set: [${set([
    ['X-Header-Set-1', 'header-set-1'],
    ['X-Header-Set-2', 'header-set-2'],
  ])}], add: [${set([
    ['X-Header-Add-1', 'header-add-1'],
    ['X-Header-Add-2', 'header-add-2'],
    ['X-Header-Add-3', 'header-add-3'],
  ])}], remove: [X-Header-Remove-1, X-Header-Remove-2]`,
  '/case-insensitivity': `set: [${set([['X-Header-Set', 'header-set']])}], add: [${set([
    ['X-Header-Add', 'header-add'],
  ])}], remove: [X-Header-Remove]`,
};

function headerModifierCases(): void {
  it('/set overwrites, keeping other headers', async () => {
    expectBackend(
      await request({ to: 'echo', path: '/set', headers: { 'Some-Other-Header': 'val' } }),
      'echo-v1',
      {
        headers: { 'Some-Other-Header': 'val', 'X-Header-Set': 'set-overwrites-values' },
      },
    );
    expectBackend(
      await request({ to: 'echo', path: '/set', headers: { 'X-Header-Set': 'some-other-value' } }),
      'echo-v1',
      { headers: { 'X-Header-Set': 'set-overwrites-values' } },
    );
  });
  it('/add appends to what the client sent', async () => {
    expectBackend(
      await request({ to: 'echo', path: '/add', headers: { 'Some-Other-Header': 'val' } }),
      'echo-v1',
      {
        headers: { 'Some-Other-Header': 'val', 'X-Header-Add': 'add-appends-values' },
      },
    );
    expectBackend(
      await request({ to: 'echo', path: '/add', headers: { 'X-Header-Add': 'some-other-value' } }),
      'echo-v1',
      { headers: { 'X-Header-Add': 'some-other-value,add-appends-values' } },
    );
  });
  it('/remove deletes the header', async () => {
    expectBackend(
      await request({ to: 'echo', path: '/remove', headers: { 'X-Header-Remove': 'val' } }),
      'echo-v1',
      {
        absent: ['X-Header-Remove'],
      },
    );
  });
  it('/multiple sets, adds and removes several headers at once', async () => {
    const r = await request({
      to: 'echo',
      path: '/multiple',
      headers: {
        'X-Header-Set-2': 'set-val-2',
        'X-Header-Add-2': 'add-val-2',
        'X-Header-Remove-2': 'remove-val-2',
        'Another-Header': 'another-header-val',
      },
    });
    expectBackend(r, 'echo-v1', {
      headers: {
        'X-Header-Set-1': 'header-set-1',
        'X-Header-Set-2': 'header-set-2',
        'X-Header-Add-1': 'header-add-1',
        'X-Header-Add-2': 'add-val-2,header-add-2',
        'X-Header-Add-3': 'header-add-3',
        'Another-Header': 'another-header-val',
      },
      absent: ['X-Header-Remove-1', 'X-Header-Remove-2'],
    });
  });
  it('/case-insensitivity matches header names whatever their case', async () => {
    const r = await request({
      to: 'echo',
      path: '/case-insensitivity',
      headers: {
        'x-header-set': 'original-val-set',
        'x-header-add': 'original-val-add',
        'x-header-remove': 'original-val-remove',
        'Another-Header': 'another-header-val',
      },
    });
    expectBackend(r, 'echo-v1', {
      headers: {
        'X-Header-Set': 'header-set',
        'X-Header-Add': 'original-val-add,header-add',
        'Another-Header': 'another-header-val',
      },
      absent: ['x-header-remove'],
    });
  });
}

describe('MeshHTTPRouteRequestHeaderModifier', () => {
  beforeAll(() =>
    useRoutes(
      httpRoute(
        'mesh-request-header-modifier',
        Object.entries(HEADER_OPS)
          .map(
            ([path, ops]) => `    - matches: ${prefix(path)}
      filters: [{ type: RequestHeaderModifier, requestHeaderModifier: { ${ops} } }]
      backendRefs: ${to('echo-v1', 8080)}
`,
          )
          .join(''),
      ),
    ),
  );
  headerModifierCases();
});

describe('MeshHTTPRouteBackendRequestHeaderModifier', () => {
  beforeAll(() =>
    useRoutes(
      httpRoute(
        'mesh-backend-request-header-modifier',
        Object.entries(HEADER_OPS)
          .map(
            ([path, ops]) => `    - matches: ${prefix(path)}
      backendRefs:
        - name: echo-v1
          port: 8080
          filters: [{ type: RequestHeaderModifier, requestHeaderModifier: { ${ops} } }]
`,
          )
          .join(''),
      ),
    ),
  );
  headerModifierCases();
});

describe('MeshHTTPRouteRewritePath', () => {
  const mods = `{ type: RequestHeaderModifier, requestHeaderModifier: { set: [${set([
    ['X-Header-Set', 'set-overwrites-values'],
  ])}], add: [${set([
    ['X-Header-Add', 'header-val-1'],
    ['X-Header-Add-Append', 'header-val-2'],
  ])}], remove: [X-Header-Remove] } }`;
  const rewrite = (path: string, kind: 'ReplacePrefixMatch' | 'ReplaceFullPath', value: string, extra = '') =>
    `    - matches: ${prefix(path)}
      filters:
        - { type: URLRewrite, urlRewrite: { path: { type: ${kind}, ${kind === 'ReplaceFullPath' ? 'replaceFullPath' : 'replacePrefixMatch'}: ${value} } } }${extra ? `\n        - ${extra}` : ''}
      backendRefs: ${to('echo-v1', 80)}
`;
  beforeAll(() =>
    useRoutes(
      httpRoute(
        'mesh-rewrite-path',
        rewrite('/prefix/one', 'ReplacePrefixMatch', '/one') +
          rewrite('/strip-prefix', 'ReplacePrefixMatch', '/') +
          rewrite('/full/one', 'ReplaceFullPath', '/one') +
          rewrite('/full/rewrite-path-and-modify-headers', 'ReplaceFullPath', '/test', mods) +
          rewrite('/prefix/rewrite-path-and-modify-headers', 'ReplacePrefixMatch', '/prefix', mods),
      ),
    ),
  );
  for (const [from, want] of [
    ['/prefix/one/two', '/one/two'],
    ['/strip-prefix/three', '/three'],
    ['/strip-prefix', '/'],
    ['/full/one/two', '/one'],
  ]) {
    it(`rewrites ${from} to ${want}`, async () => {
      const r = await request({ to: 'echo', path: from! });
      expectBackend(r, 'echo-v1', { path: want! });
      expect(r.sent['x-envoy-original-path']).toBe(from);
    });
  }
  it('keeps the query string through a rewrite', async () => {
    expectBackend(await request({ to: 'echo', path: '/prefix/one/two?a=b' }), 'echo-v1', {
      path: '/one/two?a=b',
    });
  });
  for (const [from, want] of [
    ['/full/rewrite-path-and-modify-headers/test', '/test'],
    ['/prefix/rewrite-path-and-modify-headers/one', '/prefix/one'],
  ]) {
    it(`rewrites ${from} to ${want} and modifies headers`, async () => {
      const r = await request({
        to: 'echo',
        path: from!,
        headers: { 'X-Header-Add-Append': 'append-val-1', 'X-Header-Remove': 'remove-val' },
      });
      expectBackend(r, 'echo-v1', {
        path: want!,
        headers: {
          'X-Header-Add': 'header-val-1',
          'X-Header-Add-Append': 'append-val-1,header-val-2',
          'X-Header-Set': 'set-overwrites-values',
        },
        absent: ['X-Header-Remove'],
      });
    });
  }
});

/** A rule per entry: PathPrefix match and a RequestRedirect with the given fields. */
function redirects(name: string, rules: [string, string][]): string {
  return httpRoute(
    name,
    rules
      .map(
        ([path, redirect]) => `    - matches: ${prefix(path)}
      filters: [{ type: RequestRedirect, requestRedirect: { ${redirect} } }]
`,
      )
      .join(''),
  );
}

function redirectCases(cases: [string, number, string][]): void {
  for (const [path, status, location] of cases) {
    it(`redirects ${path} with ${status} to ${location}`, async () => {
      const r = await request({ to: 'echo', path });
      expect(r.status).toBe(status);
      expect(r.headers.location).toBe(location);
      expect(r.text).toBe('');
    });
  }
}

describe('MeshHTTPRouteSchemeRedirect', () => {
  beforeAll(() =>
    useRoutes(
      redirects('mesh-redirect-scheme', [
        ['/scheme', 'scheme: https'],
        ['/scheme-and-host', 'scheme: https, hostname: example.org'],
        ['/scheme-and-status', 'scheme: https, statusCode: 301'],
        ['/scheme-and-host-and-status', 'scheme: https, statusCode: 302, hostname: example.org'],
      ]),
    ),
  );
  redirectCases([
    ['/scheme', 302, 'https://echo/scheme'],
    ['/scheme-and-host', 302, 'https://example.org/scheme-and-host'],
    ['/scheme-and-status', 301, 'https://echo/scheme-and-status'],
    ['/scheme-and-host-and-status', 302, 'https://example.org/scheme-and-host-and-status'],
  ]);
});

describe('MeshHTTPRouteRedirectPort', () => {
  beforeAll(() =>
    useRoutes(
      redirects('mesh-redirect-port', [
        ['/port', 'port: 8083'],
        ['/port-and-host', 'port: 8083, hostname: example.org'],
        ['/port-and-status', 'port: 8083, statusCode: 301'],
        ['/port-and-host-and-status', 'port: 8083, statusCode: 302, hostname: example.org'],
      ]),
    ),
  );
  redirectCases([
    ['/port', 302, 'http://echo:8083/port'],
    ['/port-and-host', 302, 'http://example.org:8083/port-and-host'],
    ['/port-and-status', 301, 'http://echo:8083/port-and-status'],
    ['/port-and-host-and-status', 302, 'http://example.org:8083/port-and-host-and-status'],
  ]);
});

describe('MeshHTTPRouteRedirectPath', () => {
  const pre = 'path: { type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix }';
  beforeAll(() =>
    useRoutes(
      redirects('mesh-redirect-path', [
        ['/original-prefix', pre],
        ['/full', 'path: { type: ReplaceFullPath, replaceFullPath: /full-path-replacement }'],
        ['/path-and-host', `hostname: example.org, ${pre}`],
        ['/path-and-status', `statusCode: 301, ${pre}`],
        [
          '/full-path-and-host',
          'hostname: example.org, path: { type: ReplaceFullPath, replaceFullPath: /replacement-full }',
        ],
        [
          '/full-path-and-status',
          'statusCode: 301, path: { type: ReplaceFullPath, replaceFullPath: /replacement-full }',
        ],
      ]),
    ),
  );
  redirectCases([
    ['/original-prefix/lemon', 302, 'http://echo/replacement-prefix/lemon'],
    ['/full/path/original', 302, 'http://echo/full-path-replacement'],
    ['/path-and-host', 302, 'http://example.org/replacement-prefix'],
    ['/path-and-status', 301, 'http://echo/replacement-prefix'],
    ['/full-path-and-host', 302, 'http://example.org/replacement-full'],
    ['/full-path-and-status', 301, 'http://echo/replacement-full'],
  ]);
});

describe('MeshHTTPRouteRedirectHostAndStatus', () => {
  beforeAll(() =>
    useRoutes(
      redirects('mesh-redirect-host-and-status', [
        ['/hostname-redirect', 'hostname: example.org'],
        ['/host-and-status', 'hostname: example.org, statusCode: 301'],
      ]),
    ),
  );
  redirectCases([
    ['/hostname-redirect', 302, 'http://example.org/hostname-redirect'],
    ['/host-and-status', 301, 'http://example.org/host-and-status'],
  ]);
});

describe('MeshHTTPRoute303Redirect / 307 / 308', () => {
  beforeAll(() =>
    useRoutes(
      redirects('mesh-redirect-30x', [
        ['/redirect', 'statusCode: 303'],
        ['/temporary', 'statusCode: 307'],
        ['/permanent', 'statusCode: 308'],
      ]),
    ),
  );
  redirectCases([
    ['/redirect', 303, 'http://echo/redirect'],
    ['/temporary', 307, 'http://echo/temporary'],
    ['/permanent', 308, 'http://echo/permanent'],
  ]);
});

/** Sends `n` requests and the share of each backend; true once every share is within ±0.05. */
async function split(
  send: () => Promise<string | undefined>,
  want: Record<string, number>,
  n = 500,
): Promise<{ ok: boolean; shares: Record<string, number> }> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const pod = (await send())?.replace(/-[^-]*$/, '') ?? 'none';
    counts[pod] = (counts[pod] ?? 0) + 1;
  }
  const shares = Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v / n]));
  const names = new Set([...Object.keys(want), ...Object.keys(shares)]);
  const ok = [...names].every((k) => Math.abs((shares[k] ?? 0) - (want[k] ?? 0)) <= 0.05);
  return { ok, shares };
}

describe('MeshHTTPRouteWeight', () => {
  beforeAll(() =>
    useRoutes(
      httpRoute(
        'mesh-weighted-backends',
        `    - backendRefs:
        - { name: echo-v1, port: 8080, weight: 70 }
        - { name: echo-v2, port: 8080, weight: 30 }
`,
      ),
    ),
  );
  it('splits 500 requests 70/30 within ±5 points', async () => {
    // As the conformance suite does: up to 10 rounds of 500, so chance alone does not fail it.
    let last: Record<string, number> = {};
    for (let round = 0; round < 10; round++) {
      const { ok, shares } = await split(
        async () => {
          const r = await request({ to: 'echo', path: '/' });
          expect(r.status).toBe(200);
          return r.pod;
        },
        { 'echo-v1': 0.7, 'echo-v2': 0.3 },
      );
      last = shares;
      if (ok) return;
    }
    expect(last).toEqual({ 'echo-v1': 0.7, 'echo-v2': 0.3 });
  });
});

describe('MeshHTTPRouteNamedRule', () => {
  beforeAll(() =>
    useRoutes(
      httpRoute(
        'mesh-named-rule',
        `    - name: named-rule
      matches: ${prefix('/named')}
      backendRefs: ${to('echo-v1', 8080)}
    - matches: ${prefix('/unnamed')}
      backendRefs: ${to('echo-v2', 8080)}
`,
      ),
    ),
  );
  it('sends /named to echo-v1 and /unnamed to echo-v2', async () => {
    expectBackend(await request({ to: 'echo', path: '/named' }), 'echo-v1');
    expectBackend(await request({ to: 'echo', path: '/unnamed' }), 'echo-v2');
  });
  it('names the rule (sectionName) in the access log route field, else its index', async () => {
    const routeOf = async (path: string) => {
      await request({ to: 'echo', path });
      return eventually(
        () =>
          accessLog
            .findLast((l) => l.includes(`"GET ${path} HTTP/1.1"`))
            ?.split(' ')
            .at(-1),
        `access log line for ${path}`,
      );
    };
    expect(await routeOf('/named/x')).toBe(`${NS}.mesh-named-rule.named-rule`);
    expect(await routeOf('/unnamed/y')).toBe(`${NS}.mesh-named-rule.1`);
  });
});

const FRONTEND = httpRoute(
  'mesh-split-v1',
  `    - filters: [{ type: ResponseHeaderModifier, responseHeaderModifier: { set: [{ name: X-Header-Set, value: set }] } }]
      backendRefs: ${to('echo-v2', 80)}
`,
  '[{ group: "", kind: Service, name: echo-v2 }]',
);

describe('MeshFrontend', () => {
  beforeAll(() => useRoutes(FRONTEND));
  it('applies the route of Service echo-v2 to traffic for its VIP', async () => {
    const r = await request({ to: 'echo-v2', path: '/' });
    expectBackend(r, 'echo-v2');
    expect(r.headers['x-header-set']).toBe('set');
  });
  it('does not apply Service routes to pod-addressed traffic', async () => {
    const r = await request({ to: { ip: POD.v2, port: 8080 }, path: '/', host: 'echo-v2' });
    expectBackend(r, 'echo-v2');
    expect(r.headers['x-header-set']).toBeUndefined();
  });
});

describe('MeshFrontendHostname', () => {
  beforeAll(() => useRoutes(FRONTEND));
  it('chooses the route by destination VIP, not by Host', async () => {
    const a = await request({ to: 'echo-v2', path: '/', host: 'echo-v1' });
    expectBackend(a, 'echo-v2');
    expect(a.headers['x-header-set']).toBe('set');
    const b = await request({ to: 'echo-v1', path: '/', host: 'echo-v2' });
    expectBackend(b, 'echo-v1');
    expect(b.headers['x-header-set']).toBeUndefined();
  });
});

describe('MeshPorts', () => {
  const route = (name: string, svc: string, port: string, value: string) =>
    httpRoute(
      name,
      `    - filters: [{ type: ResponseHeaderModifier, responseHeaderModifier: { set: [{ name: X-Header-Set, value: ${value} }] } }]
      backendRefs: ${to(svc, 80)}
`,
      `[{ group: "", kind: Service, name: ${svc}${port} }]`,
    );
  beforeAll(() =>
    useRoutes(
      [
        route('mesh-ports-v1', 'echo-v1', ', port: 80', 'v1'),
        route('mesh-ports-v2', 'echo-v2', '', 'v2'),
      ].join('---\n'),
    ),
  );
  it('applies a route with a parentRef port only to that port', async () => {
    const a = await request({ to: 'echo-v1', path: '/' });
    expectBackend(a, 'echo-v1');
    expect(a.headers['x-header-set']).toBe('v1');
    const b = await request({ to: 'echo-v1', port: 8080, path: '/', host: 'echo-v1:8080' });
    expectBackend(b, 'echo-v1');
    expect(b.headers['x-header-set']).toBeUndefined();
  });
  it('applies a route without a parentRef port to every HTTP port', async () => {
    for (const port of [80, 8080]) {
      const r = await request({ to: 'echo-v2', port, path: '/' });
      expectBackend(r, 'echo-v2');
      expect(r.headers['x-header-set']).toBe('v2');
    }
  });
});

describe('MeshConsumerRoute', () => {
  beforeAll(() =>
    useRoutes(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: mesh-echo-add-header
  namespace: ${CONSUMER_NS}
spec:
  parentRefs: [{ group: "", kind: Service, name: echo-v1, namespace: ${NS} }]
  rules:
    - filters: [{ type: ResponseHeaderModifier, responseHeaderModifier: { set: [{ name: X-Header-Set, value: set }] } }]
      backendRefs: [{ name: echo-v1, namespace: ${NS}, port: 80 }]
`),
  );
  it('applies a consumer route to clients of its namespace', async () => {
    const r = await request({ to: 'echo-v1', path: '/', host: `echo-v1.${NS}`, from: CONSUMER_NS });
    expectBackend(r, 'echo-v1');
    expect(r.headers['x-header-set']).toBe('set');
  });
  it('does not apply it to clients of other namespaces', async () => {
    const r = await request({ to: 'echo-v1', path: '/', host: `echo-v1.${NS}` });
    expectBackend(r, 'echo-v1');
    expect(r.headers['x-header-set']).toBeUndefined();
  });
});

describe('edge cases of §4.4', () => {
  beforeAll(() =>
    useRoutes(
      [
        httpRoute(
          'edge',
          `    - matches: ${prefix('/zero-weight')}
      backendRefs: [{ name: echo-v1, port: 8080, weight: 0 }]
    - matches: ${prefix('/missing')}
      backendRefs: ${to('echo-v9', 8080)}
    - matches: ${prefix('/idle')}
      backendRefs: ${to('idle', 8080)}
`,
        ),
        httpRoute(
          'edge-unsupported',
          `    - matches: ${prefix('/extension')}
      filters: [{ type: ExtensionRef, extensionRef: { group: example.com, kind: Thing, name: thing } }]
      backendRefs: ${to('echo-v1', 8080)}
    - matches: ${prefix('/')}
      backendRefs: ${to('echo-v1', 8080)}
`,
        ),
      ].join('---\n'),
    ),
  );
  it('answers 500 with an empty body when the total weight is 0', async () => {
    const r = await request({ to: 'echo', path: '/zero-weight' });
    expect(r.status).toBe(500);
    expect(r.text).toBe('');
    expect(r.headers['x-waypoint-reason']).toBe('route_no_backend');
  });
  it('answers 500 cluster_not_found for a backendRef to a missing Service', async () => {
    const r = await request({ to: 'echo', path: '/missing' });
    expect(r.status).toBe(500);
    expect(r.text).toBe('');
    expect(r.headers['x-waypoint-reason']).toBe('cluster_not_found');
  });
  it('answers 503 no healthy upstream for a backend Service without ready endpoints', async () => {
    const r = await request({ to: 'echo', path: '/idle' });
    expect(r.status).toBe(503);
    expect(r.text).toBe('no healthy upstream');
    expect(r.headers['x-waypoint-reason']).toBe('no_healthy_upstream');
  });
  it('answers 500 route_rule_invalid for a rule with an unsupported filter and reports the route not Accepted', async () => {
    const r = await request({ to: 'echo', path: '/extension' });
    expect(r.status).toBe(500);
    expect(r.text).toBe('');
    expect(r.headers['x-waypoint-reason']).toBe('route_rule_invalid');
    // What the broken rule matches does not fall through to the rule for `/`; the rest does.
    expect((await request({ to: 'echo', path: '/extension/deeper' })).status).toBe(500);
    expectBackend(await request({ to: 'echo', path: '/other' }), 'echo-v1');
    // The access log's flags and details, and the metric's reason label, say the same.
    const line = await eventually(
      () => accessLog.find((l) => l.includes('"GET /extension HTTP/1.1"')),
      'access log line for /extension',
    );
    expect(line).toContain('"GET /extension HTTP/1.1" 500 NC route_rule_invalid ');
    expect(await waypoint.metrics.registry.metrics()).toMatch(
      /waypoint_requests_total\{reason="route_rule_invalid",response_code="500",response_flags="NC",route=""\} 2\n/,
    );
    const dump = JSON.parse((await getText(waypoint.addresses!.admin, '/config_dump')).body) as {
      filters: {
        routing: {
          statuses: {
            name: string;
            parents: { conditions: { type: string; status: string; message: string }[] }[];
          }[];
        };
      };
    };
    const statuses = dump.filters.routing.statuses;
    const conditions = (name: string) => statuses.find((s) => s.name === name)?.parents[0]?.conditions ?? [];
    const accepted = conditions('edge-unsupported').find((c) => c.type === 'Accepted');
    expect(accepted?.status).toBe('False');
    expect(accepted?.message).toContain('ExtensionRef');
    expect(conditions('edge').find((c) => c.type === 'Accepted')?.status).toBe('True');
    expect(conditions('edge').find((c) => c.type === 'ResolvedRefs')?.status).toBe('False');
  });
});
