// The routing kinds validated through the store, as a user loading manifests sees them: valid
// documents with CRD defaults applied, and rejections naming the field.
import { afterAll, describe, expect, it } from 'vitest';
import { readManifests } from '../load.ts';
import { ResourceStore } from '../store.ts';
import { docs, removeTrees, writeTree } from '../test-support.ts';
import { type DestinationRule, destinationRuleKind } from './destination-rule.ts';
import { type GrpcRoute, grpcRouteKind } from './grpc-route.ts';
import { type HttpRoute, httpRouteKind } from './http-route.ts';
import { builtinKinds } from './registry.ts';
import { type TcpRoute, tcpRouteKind } from './tcp-route.ts';
import { type VirtualService, virtualServiceKind } from './virtual-service.ts';

afterAll(removeTrees);

async function load(...objects: unknown[]) {
  const registry = builtinKinds();
  registry.register(httpRouteKind);
  registry.register(grpcRouteKind);
  registry.register(tcpRouteKind);
  registry.register(virtualServiceKind);
  registry.register(destinationRuleKind);
  const store = new ResourceStore(registry);
  const report = store.update(await readManifests([await writeTree({ 'routes.yaml': docs(...objects) })]));
  return {
    resources: store.resources(),
    // Without the `<file>#n: ` origin prefix.
    rejected: report.rejected.map((m) => m.message.replace(/^\S+: /, '')),
    fields: report.rejected.map((m) => m.field),
  };
}

/** The validated document of the resource at index i, failing the test if there is none. */
function specOf<T>(resources: readonly { spec: unknown }[], i: number): T {
  const r = resources[i];
  if (!r) throw new Error(`no resource at ${i}`);
  return r.spec as T;
}

const meta = (name: string) => ({ name, namespace: 'gateway-conformance-mesh' });
const echoParent = { group: '', kind: 'Service', name: 'echo', port: 80 };

function httpRoute(name: string, spec: Record<string, unknown>, apiVersion = 'gateway.networking.k8s.io/v1') {
  return { apiVersion, kind: 'HTTPRoute', metadata: meta(name), spec: { parentRefs: [echoParent], ...spec } };
}
const rule = (extra: Record<string, unknown>) => ({
  backendRefs: [{ name: 'echo-v1', port: 8080 }],
  ...extra,
});

describe('HTTPRoute', () => {
  it('accepts the mesh conformance routes and applies the CRD defaults', async () => {
    const matching = httpRoute('mesh-matching', {
      rules: [
        {
          matches: [
            { path: { type: 'PathPrefix', value: '/' } },
            { headers: [{ name: 'version', value: 'one' }] },
          ],
          backendRefs: [{ name: 'echo-v1', port: 8080 }],
        },
        {
          name: 'named-rule',
          matches: [
            { path: { value: '/v2' } },
            { headers: [{ name: 'version', value: 'two' }], method: 'GET' },
          ],
          filters: [
            {
              type: 'RequestHeaderModifier',
              requestHeaderModifier: {
                set: [{ name: 'X-Header-Set', value: 'set' }],
                remove: ['X-Header-Remove'],
              },
            },
          ],
          backendRefs: [
            { name: 'echo-v2', port: 8080, weight: 70 },
            {
              name: 'echo-v3',
              port: 8080,
              weight: 0,
              filters: [
                {
                  type: 'ResponseHeaderModifier',
                  responseHeaderModifier: { add: [{ name: 'a', value: 'b' }] },
                },
              ],
            },
          ],
          timeouts: { request: '10s', backendRequest: '1s' },
          retry: { codes: [503, 504], attempts: 3, backoff: '100ms' },
          sessionPersistence: { type: 'Cookie' },
        },
        {
          matches: [{ path: { type: 'PathPrefix' }, queryParams: [{ name: 'animal', value: 'whale' }] }],
          filters: [
            {
              type: 'URLRewrite',
              urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/one' } },
            },
            {
              type: 'RequestMirror',
              requestMirror: { backendRef: { name: 'mirror', port: 80 }, percent: 50 },
            },
            { type: 'CORS', cors: { allowOrigins: ['https://a.example'], allowCredentials: true } },
          ],
          backendRefs: [{ name: 'echo-v1', port: 8080 }],
        },
        {
          matches: [{ path: { type: 'PathPrefix', value: '/scheme-and-status' } }],
          filters: [
            { type: 'RequestRedirect', requestRedirect: { scheme: 'https', port: 8083, statusCode: 301 } },
          ],
        },
      ],
    });
    const simple = httpRoute(
      'simple',
      { rules: [{ backendRefs: [{ name: 'echo-v1', port: 8080 }] }] },
      'gateway.networking.k8s.io/v1beta1',
    );
    const { resources, rejected } = await load(matching, simple);
    expect(rejected).toEqual([]);
    const [m, s] = resources.map((r) => r.spec as HttpRoute);
    expect(m?.spec.parentRefs?.[0]).toMatchObject({ group: '', kind: 'Service', name: 'echo', port: 80 });
    const rules = m?.spec.rules ?? [];
    expect(rules[0]?.matches[1]).toEqual({
      path: { type: 'PathPrefix', value: '/' },
      headers: [{ type: 'Exact', name: 'version', value: 'one' }],
    });
    expect(rules[1]?.matches[0]?.path).toEqual({ type: 'PathPrefix', value: '/v2' });
    expect(rules[1]?.backendRefs?.[0]).toMatchObject({ group: '', kind: 'Service', weight: 70 });
    expect(rules[2]?.matches[0]?.path).toEqual({ type: 'PathPrefix', value: '/' });
    expect(rules[2]?.matches[0]?.queryParams?.[0]).toEqual({ type: 'Exact', name: 'animal', value: 'whale' });
    expect(rules[2]?.backendRefs?.[0]?.weight).toBe(1);
    expect(rules[2]?.filters?.[2]?.cors?.maxAge).toBe(5);
    // A rule without matches matches everything, as the CRD default says.
    expect(s?.spec.rules[0]?.matches).toEqual([{ path: { type: 'PathPrefix', value: '/' } }]);
  });

  it('defaults an absent parentRef group and kind to a Gateway, keeping an explicit empty group', async () => {
    const route = httpRoute('gw', {
      parentRefs: [{ name: 'waypoint' }, { group: '', kind: 'Service', name: 'echo' }],
    });
    const { resources } = await load(route);
    expect(specOf<HttpRoute>(resources, 0).spec.parentRefs).toEqual([
      { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint' },
      { group: '', kind: 'Service', name: 'echo' },
    ]);
  });

  it('keeps unknown filter types for the compiler to report', async () => {
    const { resources, rejected } = await load(
      httpRoute('ext', { rules: [rule({ filters: [{ type: 'example.com/Frobnicate' }] })] }),
    );
    expect(rejected).toEqual([]);
    expect(specOf<HttpRoute>(resources, 0).spec.rules[0]?.filters?.[0]?.type).toBe('example.com/Frobnicate');
  });

  it.each([
    [
      'a path that does not start with "/"',
      { rules: [rule({ matches: [{ path: { type: 'Exact', value: 'v1' } }] })] },
      'spec.rules[0].matches[0].path.value: must start with "/" for type Exact, got "v1"',
    ],
    [
      'a header name that is not a token',
      { rules: [rule({ matches: [{ headers: [{ name: 'bad header', value: 'x' }] }] })] },
      'spec.rules[0].matches[0].headers[0].name: expected an HTTP header name (a token), got "bad header"',
    ],
    [
      'an unknown method',
      { rules: [rule({ matches: [{ method: 'FETCH' }] })] },
      'spec.rules[0].matches[0].method: expected one of "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", got "FETCH"',
    ],
    [
      'a redirect status code outside the enum',
      { rules: [{ filters: [{ type: 'RequestRedirect', requestRedirect: { statusCode: 304 } }] }] },
      'spec.rules[0].filters[0].requestRedirect.statusCode: not a valid value, got 304',
    ],
    [
      'backendRequest longer than request',
      { rules: [rule({ timeouts: { request: '1s', backendRequest: '2s' } })] },
      'spec.rules[0].timeouts.backendRequest: must not be greater than timeouts.request (2s > 1s)',
    ],
    [
      'a duration in the wrong format',
      { rules: [rule({ timeouts: { request: '1.5s' } })] },
      'spec.rules[0].timeouts.request: expected a duration like "10s", "1h30m" or "500ms", got "1.5s"',
    ],
    [
      'a retry code outside 400-599',
      { rules: [rule({ retry: { codes: [200] } })] },
      'spec.rules[0].retry.codes[0]: expected an integer 400-599, got 200',
    ],
    [
      'a weight above 1000000',
      { rules: [{ backendRefs: [{ name: 'echo-v1', port: 8080, weight: 1_000_001 }] }] },
      'spec.rules[0].backendRefs[0].weight: expected an integer 0-1000000, got 1000001',
    ],
    [
      'a Service backend without a port',
      { rules: [{ backendRefs: [{ name: 'echo-v1' }] }] },
      'spec.rules[0].backendRefs[0].port: required for a Service backend',
    ],
    [
      'a known filter type without its configuration',
      { rules: [rule({ filters: [{ type: 'RequestHeaderModifier' }] })] },
      'spec.rules[0].filters[0].requestHeaderModifier: required for filter type RequestHeaderModifier',
    ],
    [
      'a redirect together with backendRefs',
      { rules: [rule({ filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https' } }] })] },
      'spec.rules[0].backendRefs: a RequestRedirect filter may not be used with backendRefs',
    ],
    [
      'ReplacePrefixMatch without a PathPrefix match',
      {
        rules: [
          rule({
            matches: [{ path: { type: 'Exact', value: '/a' } }],
            filters: [
              {
                type: 'URLRewrite',
                urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } },
              },
            ],
          }),
        ],
      },
      'spec.rules[0].filters[0].urlRewrite.path.type: ReplacePrefixMatch needs exactly one match, of type PathPrefix',
    ],
    [
      'more than 16 rules',
      { rules: Array.from({ length: 17 }, () => rule({})) },
      'spec.rules: Too big: expected array to have <=16 items',
    ],
    [
      'more than 64 matches',
      { rules: [rule({ matches: Array.from({ length: 65 }, () => ({ path: { value: '/a' } })) })] },
      'spec.rules[0].matches: Too big: expected array to have <=64 items',
    ],
  ])('rejects %s', async (_what, spec, message) => {
    const { rejected, resources } = await load(httpRoute('bad', spec));
    expect(resources).toEqual([]);
    expect(rejected).toEqual([`HTTPRoute gateway-conformance-mesh/bad: ${message}`]);
  });

  it('accepts backendRequest at most request, and any backendRequest under a zero request', async () => {
    const { rejected } = await load(
      httpRoute('a', { rules: [rule({ timeouts: { request: '1m', backendRequest: '60s' } })] }),
      httpRoute('b', { rules: [rule({ timeouts: { request: '0s', backendRequest: '5s' } })] }),
    );
    expect(rejected).toEqual([]);
  });
});

describe('GRPCRoute', () => {
  const grpcRoute = (name: string, rules: unknown[]) => ({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'GRPCRoute',
    metadata: meta(name),
    spec: { parentRefs: [{ ...echoParent, port: 7070 }], rules },
  });

  it('accepts the header-modifier conformance route and defaults match types to Exact', async () => {
    const route = grpcRoute('grpc-header-modifier', [
      {
        matches: [{ headers: [{ name: 'x-test-case', value: 'set' }] }],
        filters: [
          {
            type: 'RequestHeaderModifier',
            requestHeaderModifier: { set: [{ name: 'x-header-set', value: 'v' }] },
          },
        ],
        backendRefs: [{ name: 'echo-v1', port: 7070 }],
      },
      {
        matches: [{ method: { service: 'grpc.testing.TestService', method: 'UnaryCall' } }],
        backendRefs: [
          { name: 'echo-v1', port: 7070, weight: 70 },
          { name: 'echo-v3', port: 7070, weight: 0 },
        ],
      },
    ]);
    const { resources, rejected } = await load(route);
    expect(rejected).toEqual([]);
    const spec = specOf<GrpcRoute>(resources, 0).spec;
    expect(spec.rules?.[0]?.matches?.[0]?.headers?.[0]?.type).toBe('Exact');
    expect(spec.rules?.[1]?.matches?.[0]?.method).toEqual({
      type: 'Exact',
      service: 'grpc.testing.TestService',
      method: 'UnaryCall',
    });
  });

  it('rejects an Exact method match with neither service nor method', async () => {
    const { rejected } = await load(
      grpcRoute('bad', [
        { matches: [{ method: { type: 'Exact' } }], backendRefs: [{ name: 'e', port: 7070 }] },
      ]),
    );
    expect(rejected).toEqual([
      'GRPCRoute gateway-conformance-mesh/bad: spec.rules[0].matches[0].method.service: one of service or method is required for type Exact',
    ]);
  });

  it('rejects a malformed method name', async () => {
    const { fields } = await load(
      grpcRoute('bad', [
        { matches: [{ method: { method: 'Unary/Call' } }], backendRefs: [{ name: 'e', port: 7070 }] },
      ]),
    );
    expect(fields).toEqual(['spec.rules[0].matches[0].method.method']);
  });
});

describe('TCPRoute', () => {
  const tcpRoute = (rules: unknown) => ({
    apiVersion: 'gateway.networking.k8s.io/v1alpha2',
    kind: 'TCPRoute',
    metadata: meta('tcp'),
    spec: { parentRefs: [{ ...echoParent, port: 9000 }], rules },
  });

  it('accepts weighted backends, defaulting weight to 1', async () => {
    const { resources, rejected } = await load(
      tcpRoute([
        {
          backendRefs: [
            { name: 'echo-v1', port: 9000 },
            { name: 'echo-v2', port: 9000, weight: 3 },
          ],
        },
      ]),
    );
    expect(rejected).toEqual([]);
    expect(specOf<TcpRoute>(resources, 0).spec.rules[0]?.backendRefs.map((b) => b.weight)).toEqual([1, 3]);
  });

  it('rejects a rule without backends and a v1 apiVersion', async () => {
    const { rejected } = await load(tcpRoute([{ backendRefs: [] }]), {
      ...tcpRoute([]),
      apiVersion: 'gateway.networking.k8s.io/v1',
      metadata: meta('v1'),
    });
    expect(rejected).toEqual([
      'TCPRoute gateway-conformance-mesh/tcp: spec.rules[0].backendRefs: Too small: expected array to have >=1 items',
      'TCPRoute gateway-conformance-mesh/v1: apiVersion: gateway.networking.k8s.io/v1 is not supported for TCPRoute (supported: gateway.networking.k8s.io/v1alpha2)',
    ]);
  });
});

describe('VirtualService', () => {
  const vs = (name: string, http: unknown[], apiVersion = 'networking.istio.io/v1') => ({
    apiVersion,
    kind: 'VirtualService',
    metadata: meta(name),
    spec: { hosts: ['echo.gateway-conformance-mesh.svc.cluster.local'], http },
  });
  const route = [{ destination: { host: 'echo', subset: 'v1', port: { number: 80 } } }];

  it('accepts the fields a waypoint honours', async () => {
    const full = vs('reviews', [
      {
        name: 'v2',
        match: [
          {
            uri: { prefix: '/v2' },
            method: { exact: 'GET' },
            headers: { 'x-user': { exact: 'jason' }, 'x-present': {} },
            withoutHeaders: { 'x-canary': { regex: '.*' } },
            queryParams: { debug: { exact: '1' } },
            ignoreUriCase: true,
            port: 80,
          },
        ],
        route: [
          {
            destination: { host: 'echo', subset: 'v2' },
            weight: 80,
            headers: { request: { set: { 'x-a': 'b' } } },
          },
          { destination: { host: 'echo', subset: 'v1' }, weight: 20 },
        ],
        rewrite: { uri: '/', authority: 'echo' },
        timeout: '1.5s',
        retries: { attempts: 3, perTryTimeout: '250ms', retryOn: '5xx,gateway-error,503' },
        fault: {
          delay: { fixedDelay: '5s', percentage: { value: 10 } },
          abort: { httpStatus: 503, percentage: { value: 0.5 } },
        },
        mirror: { host: 'shadow' },
        mirrorPercentage: { value: 25 },
        corsPolicy: {
          allowOrigins: [{ exact: 'https://a.example' }],
          allowMethods: ['GET'],
          maxAge: '24h',
          unmatchedPreflights: 'IGNORE',
        },
      },
      {
        match: [{ uri: { exact: '/old' } }],
        redirect: { uri: '/new', derivePort: 'FROM_REQUEST_PORT', redirectCode: 308 },
      },
      {
        match: [{ uri: { regex: '/gone.*' } }],
        directResponse: { status: 410, body: { bytes: 'Z29uZQ==' } },
      },
      { route },
    ]);
    const tcp = {
      ...vs('tcp', [], 'networking.istio.io/v1alpha3'),
      spec: {
        hosts: ['db'],
        tcp: [{ match: [{ port: 5432 }], route: [{ destination: { host: 'db' }, weight: 100 }] }],
      },
    };
    const { resources, rejected } = await load(full, tcp);
    expect(rejected).toEqual([]);
    const http = specOf<VirtualService>(resources, 0).spec.http ?? [];
    expect(http.map((r) => r.name ?? null)).toEqual(['v2', null, null, null]);
    expect(http[0]?.match?.[0]?.headers?.['x-present']).toEqual({});
  });

  it.each([
    [
      'no action',
      [{ match: [{ uri: { prefix: '/' } }] }],
      'spec.http[0].route: one of route, redirect or directResponse is required',
    ],
    [
      'two actions',
      [{ route, redirect: { uri: '/x' } }],
      'spec.http[0].redirect: only one of route, redirect may be set',
    ],
    [
      'delegate',
      [{ delegate: { name: 'other' } }],
      'spec.http[0].delegate: delegate is not supported by the waypoint',
    ],
    [
      'a StringMatch with two kinds',
      [{ match: [{ uri: { exact: '/a', prefix: '/b' } }], route }],
      'spec.http[0].match[0].uri: only one of exact, prefix may be set',
    ],
    [
      'an empty uri StringMatch',
      [{ match: [{ uri: {} }], route }],
      'spec.http[0].match[0].uri: expected one of exact, prefix or regex',
    ],
    [
      'an upper-case header key',
      [{ match: [{ headers: { 'X-User': { exact: 'a' } } }], route }],
      'spec.http[0].match[0].headers["X-User"]: header names must be lower case',
    ],
    [
      'a redirect code outside the list',
      [{ redirect: { uri: '/x', redirectCode: 304 } }],
      'spec.http[0].redirect.redirectCode: not a valid value, got 304',
    ],
    [
      'a directResponse status below 200',
      [{ directResponse: { status: 100 } }],
      'spec.http[0].directResponse.status: expected an integer 200-599, got 100',
    ],
    [
      'a percentage above 100',
      [{ route, fault: { abort: { httpStatus: 503, percentage: { value: 101 } } } }],
      'spec.http[0].fault.abort.percentage.value: expected a number 0-100, got 101',
    ],
    [
      'a negative weight',
      [{ route: [{ destination: { host: 'echo' }, weight: -1 }] }],
      'spec.http[0].route[0].weight: expected an integer 0-2147483647, got -1',
    ],
    [
      'a malformed duration',
      [{ route, timeout: '1 second' }],
      'spec.http[0].timeout: expected a duration like "1s", "0.5s", "250ms" or "1h30m", got "1 second"',
    ],
    [
      'a directResponse body that is not base64',
      [{ directResponse: { status: 200, body: { bytes: 'not base64!' } } }],
      'spec.http[0].directResponse.body.bytes: expected base64',
    ],
  ])('rejects %s', async (_what, http, message) => {
    const { rejected } = await load(vs('bad', http));
    expect(rejected).toEqual([`VirtualService gateway-conformance-mesh/bad: ${message}`]);
  });
});

describe('DestinationRule', () => {
  const dr = (trafficPolicy: unknown, subsets: unknown[] = []) => ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: meta('echo'),
    spec: { host: 'echo.gateway-conformance-mesh.svc.cluster.local', trafficPolicy, subsets },
  });

  it('accepts a full traffic policy with wrapper numbers as plain numbers', async () => {
    const policy = {
      loadBalancer: {
        consistentHash: { httpCookie: { name: 'session', ttl: '0s' }, ringHash: { minimumRingSize: 1024 } },
      },
      connectionPool: {
        tcp: {
          maxConnections: 100,
          connectTimeout: '30ms',
          tcpKeepalive: { time: '7200s', interval: '75s' },
        },
        http: { http1MaxPendingRequests: 1, maxRequestsPerConnection: 1, h2UpgradePolicy: 'UPGRADE' },
      },
      outlierDetection: {
        consecutive5xxErrors: 3,
        interval: '1s',
        baseEjectionTime: '3m',
        maxEjectionPercent: 100,
      },
      portLevelSettings: [{ port: { number: 80 }, loadBalancer: { simple: 'LEAST_REQUEST' } }],
      retryBudget: { percent: { value: 20 }, minRetryConcurrency: 3 },
      tls: { mode: 'ISTIO_MUTUAL' },
    };
    const { resources, rejected } = await load(
      dr(policy, [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: { version: 'v2' }, trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN' } } },
      ]),
    );
    expect(rejected).toEqual([]);
    const spec = specOf<DestinationRule>(resources, 0).spec;
    expect(spec.trafficPolicy?.outlierDetection?.consecutive5xxErrors).toBe(3);
    expect(spec.subsets?.map((s) => s.name)).toEqual(['v1', 'v2']);
  });

  it.each([
    [
      'an unknown load balancer',
      { loadBalancer: { simple: 'FASTEST' } },
      'spec.trafficPolicy.loadBalancer.simple: expected one of "UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST", got "FASTEST"',
    ],
    [
      'two hash keys',
      { loadBalancer: { consistentHash: { httpHeaderName: 'x-user', useSourceIp: true } } },
      'spec.trafficPolicy.loadBalancer.consistentHash: only one of httpHeaderName, useSourceIp may be set',
    ],
    [
      'a maxEjectionPercent above 100',
      { outlierDetection: { maxEjectionPercent: 150 } },
      'spec.trafficPolicy.outlierDetection.maxEjectionPercent: expected an integer 0-100, got 150',
    ],
    [
      'a negative error count',
      { outlierDetection: { consecutive5xxErrors: -1 } },
      'spec.trafficPolicy.outlierDetection.consecutive5xxErrors: expected an integer 0-4294967295, got -1',
    ],
    [
      'a malformed connect timeout',
      { connectionPool: { tcp: { connectTimeout: 'ten' } } },
      'spec.trafficPolicy.connectionPool.tcp.connectTimeout: expected a duration like "1s", "0.5s", "250ms" or "1h30m", got "ten"',
    ],
    [
      'a port-level setting without a valid port',
      { portLevelSettings: [{ port: { number: 0 } }] },
      'spec.trafficPolicy.portLevelSettings[0].port.number: expected an integer 1-65535, got 0',
    ],
  ])('rejects %s', async (_what, policy, message) => {
    const { rejected } = await load(dr(policy));
    expect(rejected).toEqual([`DestinationRule gateway-conformance-mesh/echo: ${message}`]);
  });

  it('rejects duplicate and malformed subset names', async () => {
    const { rejected } = await load(dr(null, [{ name: 'v1' }, { name: 'v1' }]));
    expect(rejected).toEqual([
      'DestinationRule gateway-conformance-mesh/echo: spec.subsets[1].name: duplicate subset name "v1"',
    ]);
  });
});
