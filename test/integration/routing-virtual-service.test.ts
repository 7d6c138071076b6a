// VirtualService at the waypoint (l7-semantics.md §4.9), through a real waypoint: first match
// wins in the VirtualService's own order, every match field the waypoint honours, weighted
// destinations and DestinationRule subsets, per-destination headers, redirect, direct response,
// rewrites, header operations and corsPolicy (with the CORS filter in the chain). Mirrors,
// timeouts, retries and faults are covered by their own suites.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corsFilter } from '../../filters/cors/index.ts';
import { defaultFilters } from '../../filters/index.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { id, TestMesh, waypointYaml } from '../helpers/mesh.ts';

let mesh: TestMesh;
let waypoint: Waypoint;

const ECHO_VIP = '127.0.190.1';
const MIXED_VIP = '127.0.190.3';

/** A Service on port 80 → 8080 and its pods, each with its own labels. */
function service(
  name: string,
  vip: string,
  pods: { name: string; ip: string; labels: Record<string, string> }[],
) {
  const docs = [
    `apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: shop }
spec:
  clusterIP: ${vip}
  selector: { app: ${name} }
  ports:
    - { name: http, port: 80, targetPort: 8080 }
`,
  ];
  for (const p of pods)
    docs.push(`apiVersion: v1
kind: Pod
metadata:
  name: ${p.name}
  namespace: shop
  labels: ${JSON.stringify({ app: name, ...p.labels })}
spec: { serviceAccountName: ${name} }
status:
  phase: Running
  podIP: ${p.ip}
  conditions: [{ type: Ready, status: "True" }]
`);
  return docs.join('---\n');
}

const direct = (body: string) => `directResponse: { status: 200, body: { string: ${body} } }`;

const VS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: echo, namespace: shop }
spec:
  hosts: [echo]
  http:
    - match: [{ uri: { prefix: /order } }]
      ${direct('order-prefix')}
    - match: [{ uri: { exact: /order/x } }]
      ${direct('order-exact')}
    - match: [{ uri: { exact: /exact } }]
      ${direct('exact')}
    - match: [{ uri: { prefix: /v2 } }]
      ${direct('prefix-v2')}
    - match: [{ uri: { regex: "/re/[0-9]+" } }]
      ${direct('regex')}
    - match: [{ uri: { exact: /Case }, ignoreUriCase: true }, { uri: { prefix: /Pre }, ignoreUriCase: true }]
      ${direct('ignore-case')}
    - match: [{ uri: { prefix: /h }, headers: { x-exact: { exact: a } } }]
      ${direct('h-exact')}
    - match: [{ uri: { prefix: /h }, headers: { x-prefix: { prefix: pre } } }]
      ${direct('h-prefix')}
    - match: [{ uri: { prefix: /h }, headers: { x-regex: { regex: "v[0-9]+" } } }]
      ${direct('h-regex')}
    - match: [{ uri: { prefix: /h }, headers: { x-present: {} } }]
      ${direct('h-present')}
    - match: [{ uri: { prefix: /wo }, withoutHeaders: { x-block: { exact: "yes" } } }]
      ${direct('without')}
    - match: [{ uri: { prefix: /q }, queryParams: { shard: { exact: "7" } } }]
      ${direct('query')}
    - match: [{ uri: { prefix: /m }, method: { exact: POST } }]
      ${direct('method-post')}
    - match: [{ uri: { prefix: /a }, authority: { exact: special.example } }]
      ${direct('authority')}
    - match: [{ uri: { prefix: /p }, port: 81 }]
      ${direct('port-81')}
    - match: [{ uri: { prefix: /p }, port: 80 }]
      ${direct('port-80')}
    - match: [{ uri: { prefix: /scheme }, scheme: { exact: https } }]
      ${direct('scheme-https')}
    - match: [{ uri: { prefix: /scheme }, scheme: { exact: http } }]
      ${direct('scheme-http')}
    - match: [{ uri: { prefix: /srcns }, sourceNamespace: other }]
      ${direct('source-namespace-other')}
    - match: [{ uri: { prefix: /srcns }, sourceNamespace: shop }]
      ${direct('source-namespace-shop')}
    - match: [{ uri: { prefix: /src }, sourceLabels: { app: sleep } }]
      ${direct('source-labels')}
    - match: [{ uri: { prefix: /split } }]
      route:
        - destination: { host: echo, subset: v1 }
          weight: 90
          headers:
            request: { set: { x-dest: v1 } }
            response: { set: { x-dest-resp: v1 } }
        - destination: { host: echo, subset: v2 }
          weight: 10
          headers:
            request: { set: { x-dest: v2 } }
            response: { set: { x-dest-resp: v2 } }
    - match: [{ uri: { prefix: /weight-zero } }]
      route:
        - { destination: { host: echo, subset: v1 }, weight: 100 }
        - { destination: { host: echo, subset: v2 }, weight: 0 }
    - match: [{ uri: { prefix: /v1only } }]
      route: [{ destination: { host: echo.shop.svc.cluster.local, subset: v1, port: { number: 80 } } }]
    - match: [{ uri: { prefix: /nosubset } }]
      route: [{ destination: { host: echo, subset: v9 } }]
    - match: [{ uri: { prefix: /redir/default } }]
      redirect: { uri: /moved }
    - match: [{ uri: { prefix: /redir/authority } }]
      redirect: { authority: b.example }
    - match: [{ uri: { prefix: /redir/full } }]
      redirect: { uri: /there, authority: other.example, port: 8443, scheme: https, redirectCode: 308 }
    - match: [{ uri: { prefix: /redir/request-port } }]
      redirect: { authority: a.example, scheme: https, derivePort: FROM_REQUEST_PORT, redirectCode: 302 }
    - match: [{ uri: { prefix: /redir/protocol-default } }]
      redirect: { authority: a.example, scheme: https, derivePort: FROM_PROTOCOL_DEFAULT }
    - match: [{ uri: { prefix: /direct/string } }]
      directResponse: { status: 418, body: { string: teapot } }
    - match: [{ uri: { prefix: /direct/bytes } }]
      directResponse: { status: 200, body: { bytes: ${Buffer.from('hello bytes').toString('base64')} } }
    - match: [{ uri: { prefix: /rw/prefix } }]
      rewrite: { uri: /new }
      route: [{ destination: { host: echo, subset: v1 } }]
    - match: [{ uri: { exact: /rw/exact } }]
      rewrite: { uri: /replaced }
      route: [{ destination: { host: echo, subset: v1 } }]
    - match: [{ uri: { prefix: /rw/authority } }]
      rewrite: { authority: new.example }
      route: [{ destination: { host: echo, subset: v1 } }]
    - match: [{ uri: { prefix: /rw/regex } }]
      rewrite: { uriRegexRewrite: { match: "^/rw/regex/([a-z]+)/([0-9]+)$", rewrite: "/r/\\\\2/\\\\1" } }
      route: [{ destination: { host: echo, subset: v1 } }]
    - match: [{ uri: { prefix: /broken } }]
      rewrite: { uriRegexRewrite: { match: "(?P<name>x)", rewrite: /y } }
      route: [{ destination: { host: echo, subset: v1 } }]
    - match: [{ uri: { prefix: /hdr } }]
      headers:
        request: { set: { x-set: s }, add: { x-add: a }, remove: [x-remove] }
        response: { set: { x-resp-set: r }, add: { x-resp-add: ra }, remove: [x-pod] }
      route: [{ destination: { host: echo, subset: v1 } }]
    - match: [{ uri: { prefix: /cors-ignore } }]
      corsPolicy:
        allowOrigins: [{ exact: https://shop.example }]
        unmatchedPreflights: IGNORE
      route: [{ destination: { host: echo, subset: v1 } }]
    - match: [{ uri: { prefix: /cors } }]
      corsPolicy:
        allowOrigins: [{ exact: https://shop.example }, { prefix: https://admin. }]
        allowMethods: [GET, POST]
        allowHeaders: [x-token, content-type]
        exposeHeaders: [x-trace]
        maxAge: 10m
        allowCredentials: true
      route: [{ destination: { host: echo, subset: v1 } }]
    - name: catch-all
      ${direct('catch-all')}
`;

const DR = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: echo, namespace: shop }
spec:
  host: echo
  subsets:
    - { name: v1, labels: { version: v1 } }
    - { name: v2, labels: { version: v2 } }
`;

const MIXED_ROUTE = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: mixed, namespace: shop }
spec:
  parentRefs: [{ group: "", kind: Service, name: mixed, port: 80 }]
  rules:
    - matches: [{ path: { type: PathPrefix, value: /gw-cors } }]
      filters:
        - type: CORS
          cors: { allowOrigins: [https://gw.example], allowMethods: [GET, PUT], allowHeaders: [x-a] }
      backendRefs: [{ name: mixed, port: 80 }]
    - matches: [{ path: { type: PathPrefix, value: /gw-any } }]
      filters:
        - type: CORS
          cors: { allowOrigins: ["*"], exposeHeaders: [x-b] }
      backendRefs: [{ name: mixed, port: 80 }]
    - filters:
        - type: ResponseHeaderModifier
          responseHeaderModifier: { set: [{ name: x-from, value: httproute }] }
      backendRefs: [{ name: mixed, port: 80 }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: mixed-vs, namespace: shop }
spec:
  hosts: [mixed]
  http:
    - ${direct('from-virtual-service')}
`;

beforeAll(async () => {
  mesh = await TestMesh.create();
  await mesh.writeConfig(
    'mesh.yaml',
    [
      waypointYaml(),
      service('echo', ECHO_VIP, [
        { name: 'echo-v1', ip: '127.0.191.1', labels: { version: 'v1' } },
        { name: 'echo-v2', ip: '127.0.191.2', labels: { version: 'v2' } },
      ]),
      service('mixed', MIXED_VIP, [{ name: 'mixed-0', ip: '127.0.191.4', labels: {} }]),
      VS,
      DR,
      MIXED_ROUTE,
    ].join('---\n'),
  );
  for (const [ip, name, sa] of [
    ['127.0.191.1', 'echo-v1', 'echo'],
    ['127.0.191.2', 'echo-v2', 'echo'],
    ['127.0.191.4', 'mixed-0', 'mixed'],
  ] as const)
    await mesh.pod(ip, 8080, TestMesh.echoServer(name), id('shop', sa));
  // The CORS filter first after path normalization, where Istio runs it.
  const chain = defaultFilters();
  mesh.onClose(() => chain.close());
  const [normalize, ...rest] = chain.serving;
  const ip = '127.0.190.100';
  waypoint = await mesh.startWaypoint({
    ip: ip,
    factories: [normalize!, corsFilter, ...rest],
  });
});
afterAll(() => mesh.close());

const pools = new Map<string, ReturnType<TestMesh['httpPool']>>();

async function send(
  path: string,
  opts: { method?: string; headers?: Record<string, string>; vip?: string; clientNs?: string } = {},
) {
  const vip = opts.vip ?? ECHO_VIP;
  const clientNs = opts.clientNs ?? 'shop';
  let pool = pools.get(`${vip}|${clientNs}`);
  if (!pool) {
    pool = mesh.httpPool(await mesh.hboneClient(id(clientNs, 'sleep')), waypoint.addresses!.hbone, {
      ip: vip,
      port: 80,
    });
    pools.set(`${vip}|${clientNs}`, pool);
  }
  const res = await pool.request({
    method: (opts.method ?? 'GET') as 'GET',
    path,
    headers: { host: 'echo', ...opts.headers },
  });
  const text = await res.body.text();
  let json: Record<string, unknown> = {};
  if (String(res.headers['content-type'] ?? '').includes('json')) json = JSON.parse(text);
  return {
    status: res.statusCode,
    headers: res.headers,
    text,
    pod: json.pod as string | undefined,
    path: json.path as string | undefined,
    upstream: (json.headers ?? {}) as Record<string, string>,
  };
}

const body = async (path: string, opts?: Parameters<typeof send>[1]) => (await send(path, opts)).text;

describe('matching', () => {
  it('takes the first matching rule in order, not the most specific', async () => {
    expect(await body('/order/x')).toBe('order-prefix');
  });

  it('matches uri exact, a plain string prefix and a full-match regex', async () => {
    expect(await body('/exact')).toBe('exact');
    expect(await body('/exact/')).toBe('catch-all');
    expect(await body('/v2')).toBe('prefix-v2');
    expect(await body('/v2example')).toBe('prefix-v2');
    expect(await body('/re/123')).toBe('regex');
    expect(await body('/re/123x')).toBe('catch-all');
    expect(await body('/x/re/123')).toBe('catch-all');
    // The query string is not part of the uri.
    expect(await body('/exact?a=1')).toBe('exact');
  });

  it('ignores uri case for exact and prefix with ignoreUriCase', async () => {
    expect(await body('/CASE')).toBe('ignore-case');
    expect(await body('/case')).toBe('ignore-case');
    expect(await body('/pREfix')).toBe('ignore-case');
  });

  it('matches headers exact, prefix, regex (full) and presence', async () => {
    expect(await body('/h', { headers: { 'x-exact': 'a' } })).toBe('h-exact');
    expect(await body('/h', { headers: { 'x-exact': 'A' } })).toBe('catch-all');
    expect(await body('/h', { headers: { 'x-prefix': 'prefixed' } })).toBe('h-prefix');
    expect(await body('/h', { headers: { 'x-regex': 'v12' } })).toBe('h-regex');
    expect(await body('/h', { headers: { 'x-regex': 'v12b' } })).toBe('catch-all');
    expect(await body('/h', { headers: { 'x-present': '' } })).toBe('h-present');
    expect(await body('/h', { headers: { 'x-present': 'anything' } })).toBe('h-present');
    expect(await body('/h')).toBe('catch-all');
  });

  it('withoutHeaders matches when the header is absent or different', async () => {
    expect(await body('/wo')).toBe('without');
    expect(await body('/wo', { headers: { 'x-block': 'no' } })).toBe('without');
    expect(await body('/wo', { headers: { 'x-block': 'yes' } })).toBe('catch-all');
  });

  it('matches queryParams, method and authority', async () => {
    expect(await body('/q?shard=7')).toBe('query');
    expect(await body('/q?shard=8')).toBe('catch-all');
    expect(await body('/q')).toBe('catch-all');
    expect(await body('/m', { method: 'POST' })).toBe('method-post');
    expect(await body('/m')).toBe('catch-all');
    expect(await body('/a', { headers: { host: 'special.example' } })).toBe('authority');
    expect(await body('/a')).toBe('catch-all');
  });

  it('matches port against the Service port the client dialled', async () => {
    expect(await body('/p')).toBe('port-80');
  });

  it('matches scheme against the plaintext HTTP the waypoint receives', async () => {
    expect(await body('/scheme')).toBe('scheme-http');
  });

  it("matches sourceNamespace against the waypoint's namespace, not the client's", async () => {
    expect(await body('/srcns', { clientNs: 'other' })).toBe('source-namespace-shop');
  });

  it('drops a sourceLabels match and warns about it in the snapshot messages', async () => {
    expect(await body('/src')).toBe('catch-all');
    const warnings = waypoint.snapshot!.messages.map((m) => m.message);
    expect(warnings.some((m) => m.includes('VirtualService shop/echo') && m.includes('sourceLabels'))).toBe(
      true,
    );
  });
});

describe('destinations', () => {
  it('splits by weight across DestinationRule subsets with per-destination headers', async () => {
    const counts: Record<string, number> = {};
    for (let i = 0; i < 500; i++) {
      const r = await send('/split');
      expect(r.status).toBe(200);
      const pod = r.pod!;
      counts[pod] = (counts[pod] ?? 0) + 1;
      // Each destination's own header operations, on the request and on the response.
      const version = pod === 'echo-v1' ? 'v1' : 'v2';
      expect(r.upstream['x-dest']).toBe(version);
      expect(r.headers['x-dest-resp']).toBe(version);
    }
    expect((counts['echo-v1'] ?? 0) + (counts['echo-v2'] ?? 0)).toBe(500);
    const share = (counts['echo-v1'] ?? 0) / 500;
    expect(share).toBeGreaterThan(0.85);
    expect(share).toBeLessThan(0.95);
  });

  it('sends a subset only to the pods whose labels it selects', async () => {
    for (let i = 0; i < 20; i++) expect((await send('/v1only')).pod).toBe('echo-v1');
  });

  it('ignores a destination with weight 0 among several', async () => {
    for (let i = 0; i < 20; i++) expect((await send('/weight-zero')).pod).toBe('echo-v1');
  });

  it('answers 503 cluster_not_found for a subset no DestinationRule defines', async () => {
    const r = await send('/nosubset');
    expect(r.status).toBe(503);
    expect(r.headers['x-waypoint-reason']).toBe('cluster_not_found');
  });
});

describe('redirect and direct response', () => {
  it('redirects with 301 by default, keeping the host and replacing the whole path', async () => {
    const r = await send('/redir/default/a?x=1');
    expect(r.status).toBe(301);
    // redirect.uri replaces the whole path whatever the match (Envoy path_redirect); the query stays.
    expect(r.headers.location).toBe('http://echo/moved?x=1');
    expect(r.text).toBe('');
    const withPort = await send('/redir/default/a', { headers: { host: 'echo:8080' } });
    expect(withPort.headers.location).toBe('http://echo:8080/moved');
  });

  it("drops the request's port when the authority is replaced and no port is given", async () => {
    const r = await send('/redir/authority/a', { headers: { host: 'echo:8080' } });
    expect(r.headers.location).toBe('http://b.example/redir/authority/a');
  });

  it('redirects with uri, authority, port, scheme and redirectCode', async () => {
    const r = await send('/redir/full/a');
    expect(r.status).toBe(308);
    expect(r.headers.location).toBe('https://other.example:8443/there');
  });

  it('derives the port from the request or from the scheme', async () => {
    const a = await send('/redir/request-port/z');
    expect(a.status).toBe(302);
    expect(a.headers.location).toBe('https://a.example:80/redir/request-port/z');
    const b = await send('/redir/protocol-default/z', { headers: { host: 'echo:8080' } });
    expect(b.status).toBe(301);
    expect(b.headers.location).toBe('https://a.example/redir/protocol-default/z');
  });

  it('answers a direct response with a string or a bytes body', async () => {
    const a = await send('/direct/string');
    expect(a.status).toBe(418);
    expect(a.text).toBe('teapot');
    const b = await send('/direct/bytes');
    expect(b.status).toBe(200);
    expect(b.text).toBe('hello bytes');
  });
});

describe('a rule that cannot be compiled', () => {
  it('answers 500 route_rule_invalid to what it matches, warns, and leaves later rules in force', async () => {
    const r = await send('/broken/x');
    expect(r.status).toBe(500);
    expect(r.text).toBe('');
    expect(r.headers['x-waypoint-reason']).toBe('route_rule_invalid');
    const warnings = waypoint.snapshot!.messages.map((m) => m.message);
    expect(
      warnings.some(
        (m) =>
          m.includes('VirtualService shop/echo: spec.http[') &&
          m.includes('.rewrite.uriRegexRewrite.match: invalid regular expression') &&
          m.endsWith('requests matching this rule get 500'),
      ),
    ).toBe(true);
    // The rule after it still answers.
    expect((await send('/hdr')).status).toBe(200);
  });
});

describe('rewrite and header operations', () => {
  it('rewrites the matched prefix, keeping the rest and the query', async () => {
    const r = await send('/rw/prefix/a?x=1');
    expect(r.path).toBe('/new/a?x=1');
    expect(r.upstream['x-envoy-original-path']).toBe('/rw/prefix/a?x=1');
  });

  it('rewrites the whole path of an exact match', async () => {
    expect((await send('/rw/exact?k=v')).path).toBe('/replaced?k=v');
  });

  it('rewrites the authority', async () => {
    const r = await send('/rw/authority');
    expect(r.upstream.host).toBe('new.example');
  });

  it('rewrites with uriRegexRewrite and \\N back-references', async () => {
    expect((await send('/rw/regex/abc/42')).path).toBe('/r/42/abc');
  });

  it('sets, adds and removes request and response headers', async () => {
    const r = await send('/hdr', { headers: { 'x-set': 'old', 'x-add': 'orig', 'x-remove': 'gone' } });
    expect(r.status).toBe(200);
    expect(r.upstream['x-set']).toBe('s');
    expect(r.upstream['x-add']).toBe('orig,a');
    expect(r.upstream['x-remove']).toBeUndefined();
    expect(r.headers['x-resp-set']).toBe('r');
    expect(r.headers['x-resp-add']).toBe('ra');
    expect(r.headers['x-pod']).toBeUndefined();
  });
});

describe('corsPolicy', () => {
  const preflight = (path: string, origin: string) =>
    send(path, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST' },
    });

  it('answers an allowed preflight at the waypoint', async () => {
    const r = await preflight('/cors', 'https://shop.example');
    expect(r.status).toBe(200);
    expect(r.headers['x-waypoint-reason']).toBe('cors_preflight');
    expect(r.headers['access-control-allow-origin']).toBe('https://shop.example');
    expect(r.headers['access-control-allow-methods']).toBe('GET,POST');
    expect(r.headers['access-control-allow-headers']).toBe('x-token,content-type');
    expect(r.headers['access-control-max-age']).toBe('600');
    expect(r.headers['access-control-allow-credentials']).toBe('true');
    // allowOrigins are StringMatches: a prefix works too.
    const p = await preflight('/cors', 'https://admin.shop.example');
    expect(p.headers['access-control-allow-origin']).toBe('https://admin.shop.example');
  });

  it('forwards a preflight from another origin upstream by default', async () => {
    const r = await preflight('/cors', 'https://evil.example');
    expect(r.status).toBe(200);
    expect(r.pod).toBe('echo-v1');
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('answers a preflight from another origin without CORS headers with IGNORE', async () => {
    const r = await preflight('/cors-ignore', 'https://evil.example');
    expect(r.status).toBe(200);
    expect(r.pod).toBeUndefined();
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('adds allow-origin, credentials and expose-headers to an actual request from an allowed origin', async () => {
    const r = await send('/cors', { headers: { origin: 'https://shop.example' } });
    expect(r.pod).toBe('echo-v1');
    expect(r.headers['access-control-allow-origin']).toBe('https://shop.example');
    expect(r.headers['access-control-allow-credentials']).toBe('true');
    expect(r.headers['access-control-expose-headers']).toBe('x-trace');
    const other = await send('/cors', { headers: { origin: 'https://evil.example' } });
    expect(other.pod).toBe('echo-v1');
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('VirtualService and HTTPRoute for the same Service', () => {
  it('uses the HTTPRoute and names the ignored VirtualService in a warning', async () => {
    const r = await send('/anything', { vip: MIXED_VIP });
    expect(r.pod).toBe('mixed-0');
    expect(r.headers['x-from']).toBe('httproute');
    const warnings = waypoint.snapshot!.messages.map((m) => m.message);
    expect(warnings.some((m) => m.includes('VirtualService shop/mixed-vs') && m.includes('ignored'))).toBe(
      true,
    );
  });
});

describe('Gateway API CORS filter', () => {
  const preflight = (path: string, origin: string) =>
    send(path, {
      vip: MIXED_VIP,
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'PUT' },
    });

  it('answers a preflight from an exact allowed origin, with maxAge defaulting to 5 s', async () => {
    const r = await preflight('/gw-cors', 'https://gw.example');
    expect(r.headers['x-waypoint-reason']).toBe('cors_preflight');
    expect(r.headers['access-control-allow-origin']).toBe('https://gw.example');
    expect(r.headers['access-control-allow-methods']).toBe('GET,PUT');
    expect(r.headers['access-control-allow-headers']).toBe('x-a');
    expect(r.headers['access-control-max-age']).toBe('5');
    expect(r.headers['access-control-allow-credentials']).toBeUndefined();
    // Exact: a longer origin is another origin, and its preflight goes upstream.
    const other = await preflight('/gw-cors', 'https://gw.example.evil');
    expect(other.pod).toBe('mixed-0');
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('allows any origin with "*"', async () => {
    const r = await send('/gw-any', { vip: MIXED_VIP, headers: { origin: 'https://anywhere.example' } });
    expect(r.pod).toBe('mixed-0');
    expect(r.headers['access-control-allow-origin']).toBe('https://anywhere.example');
    expect(r.headers['access-control-expose-headers']).toBe('x-b');
  });
});
