import { afterAll, describe, expect, it } from 'vitest';
import { compileSnapshot } from '../../config/compile.ts';
import { readManifests } from '../../config/load.ts';
import type { Snapshot } from '../../config/model.ts';
import { ResourceStore, type UpdateReport } from '../../config/store.ts';
import { removeTrees, writeTree } from '../../config/test-support.ts';
import { serviceYaml, waypointYaml } from '../../test/helpers/mesh.ts';
import { FILTER_NAME, rateLimitFactory } from './index.ts';
import type { RateLimitConfig } from './model.ts';

afterAll(removeTrees);

const FACTORY = rateLimitFactory();

function btp(name: string, spec: string, ns = 'shop'): string {
  return `apiVersion: waypoint.node-waypoint.io/v1alpha1
kind: BackendTrafficPolicy
metadata:
  name: ${name}
  namespace: ${ns}
spec:
${spec}`;
}

const LOCAL_10 = `  rateLimit:
    type: Local
    local:
      rules:
        - limit: {requests: 10, unit: Minute}
`;

const MESH = [
  waypointYaml(),
  serviceYaml({ name: 'api', vip: '10.96.0.1', port: 80, pods: [{ name: 'api-a', ip: '10.0.0.1' }] }),
  serviceYaml({ name: 'web', vip: '10.96.0.2', port: 80, pods: [{ name: 'web-a', ip: '10.0.0.2' }] }),
];

const SERVICE_ENTRY = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: ext
  namespace: shop
  labels: {istio.io/use-waypoint: waypoint}
spec:
  hosts: [ext.shop.mesh]
  addresses: [127.26.9.3]
  ports: [{number: 80, name: http, protocol: HTTP}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{address: 127.26.9.13}]
`;

async function load(store: ResourceStore, ...extra: string[]): Promise<UpdateReport> {
  const dir = await writeTree({ 'mesh.yaml': [...MESH, ...extra].join('---\n') });
  return store.update(await readManifests([dir]));
}

function compile(store: ResourceStore): Snapshot {
  return compileSnapshot(
    store.resources(),
    {
      gateway: { namespace: 'shop', name: 'waypoint' },
      trustDomain: 'cluster.local',
      clusterDomain: 'cluster.local',
    },
    1,
    { [FILTER_NAME]: FACTORY.compile! },
  );
}

async function compiled(...extra: string[]): Promise<{ config: RateLimitConfig; snapshot: Snapshot }> {
  const store = new ResourceStore();
  const report = await load(store, ...extra);
  expect(report.rejected).toEqual([]);
  const snapshot = compile(store);
  return { config: snapshot.filters[FILTER_NAME] as RateLimitConfig, snapshot };
}

const summary = (list: RateLimitConfig['services'][string] | undefined) =>
  (list ?? []).map((a) => `${a.rule.policy}#${a.rule.index} ${a.scope ?? '(per destination)'}`);

describe('BackendTrafficPolicy attachment', () => {
  it('a Gateway target applies to every Service and workload traffic, a Service target to that Service', async () => {
    const { config } = await compiled(
      btp(
        'gw',
        `  targetRefs:\n    - {group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}\n${LOCAL_10}`,
      ),
      btp('svc', `  targetRefs:\n    - {group: "", kind: Service, name: api}\n${LOCAL_10}`),
    );
    expect(summary(config.services['shop/api'])).toEqual([
      'shop/gw#0 (per destination)',
      'shop/svc#0 Service shop/api',
    ]);
    expect(summary(config.services['shop/web'])).toEqual(['shop/gw#0 (per destination)']);
    expect(summary(config.workload)).toEqual(['shop/gw#0 (per destination)']);
  });

  it('a shared rule has one bucket for everything the policy targets', async () => {
    const { config } = await compiled(
      btp(
        'both',
        `  targetRefs:\n    - {kind: Service, name: api}\n    - {kind: Service, name: web}\n  rateLimit:\n    type: Global\n    global:\n      rules:\n        - limit: {requests: 5, unit: Hour}\n          shared: true\n`,
      ),
    );
    expect(summary(config.services['shop/api'])).toEqual(['shop/both#0 shared']);
    expect(summary(config.services['shop/web'])).toEqual(['shop/both#0 shared']);
    expect(config.services['shop/api']![0]!.rule).toMatchObject({
      type: 'Global',
      requests: 5,
      unit: 'Hour',
    });
  });

  it('an HTTPRoute target attaches to one rule by sectionName, or to every rule without', async () => {
    const { config } = await compiled(
      btp(
        'route',
        `  targetRefs:\n    - {group: gateway.networking.k8s.io, kind: HTTPRoute, name: api-route, sectionName: writes}\n    - {group: gateway.networking.k8s.io, kind: GRPCRoute, name: rpc}\n${LOCAL_10}`,
      ),
    );
    expect(Object.keys(config.routes).sort()).toEqual([
      'GRPCRoute/shop/rpc/*',
      'HTTPRoute/shop/api-route/writes',
    ]);
    expect(summary(config.routes['HTTPRoute/shop/api-route/writes'])).toEqual([
      'shop/route#0 HTTPRoute shop/api-route/writes',
    ]);
    expect(config.services).toEqual({});
  });

  it('a ServiceEntry target attaches like a Service (the same rule as AuthorizationPolicy)', async () => {
    const { config, snapshot } = await compiled(
      btp(
        'ext',
        `  targetRefs:\n    - {group: networking.istio.io, kind: ServiceEntry, name: ext}\n${LOCAL_10}`,
      ),
      SERVICE_ENTRY,
    );
    expect(snapshot.services.has('127.26.9.3:80')).toBe(true);
    expect(Object.keys(config.services)).toEqual(['shop/ext']);
  });

  it('ignores, with a warning naming file, kind, name and field, targets it cannot honour', async () => {
    const { config, snapshot } = await compiled(
      btp(
        'odd',
        `  targetRefs:\n    - {group: gateway.networking.k8s.io, kind: Gateway, name: other-waypoint}\n    - {kind: Service, name: api, namespace: bank}\n    - {group: apps, kind: Deployment, name: ext}\n    - {group: gateway.networking.k8s.io, kind: GatewayClass, name: istio-waypoint}\n  targetSelectors: [{matchLabels: {a: b}}]\n${LOCAL_10}`,
      ),
    );
    expect(config.services).toEqual({});
    expect(config.workload).toEqual([]);
    const messages = snapshot.messages.map((m) => m.message);
    expect(messages).toContainEqual(
      expect.stringMatching(
        /mesh\.yaml#\d+: BackendTrafficPolicy shop\/odd: spec\.targetRefs\[1\]: cross-namespace targetRef is not supported/,
      ),
    );
    expect(messages).toContainEqual(
      expect.stringMatching(
        /BackendTrafficPolicy shop\/odd: spec\.targetRefs\[2\]: target kind apps\/Deployment does not attach to a waypoint; ignored/,
      ),
    );
    expect(messages).toContainEqual(
      expect.stringMatching(
        /shop\/odd: spec\.targetRefs\[3\]: GatewayClass targets are not supported; ignored/,
      ),
    );
    expect(messages).toContainEqual(
      expect.stringMatching(/shop\/odd: spec\.targetSelectors: targetSelectors are not supported/),
    );
    const m = snapshot.messages.find((x) => x.field === 'spec.targetRefs[1]')!;
    expect(m).toMatchObject({
      kind: 'BackendTrafficPolicy',
      namespace: 'shop',
      name: 'odd',
      severity: 'warning',
    });
  });

  it('compiles selectors: lower-case header names, upper-case methods, anchored regexes', async () => {
    const { config } = await compiled(
      btp(
        'sel',
        `  targetRefs:\n    - {kind: Service, name: api}\n  rateLimit:\n    type: Local\n    local:\n      rules:\n        - clientSelectors:\n            - headers: [{name: X-User, type: Distinct}, {name: X-Tier, type: RegularExpression, value: "gold|silver"}]\n              methods: [post]\n              path: {value: /v1}\n              sourcePrincipal: {type: Distinct}\n              sourceNamespace: {value: shop, invert: true}\n              sourceCIDR: {type: Distinct, value: 10.0.0.0/8}\n          limit: {requests: 3, unit: Second}\n`,
      ),
    );
    const s = config.services['shop/api']![0]!.rule.selectors[0]!;
    expect(s.headers.map((h) => [h.name, h.type])).toEqual([
      ['x-user', 'Distinct'],
      ['x-tier', 'RegularExpression'],
    ]);
    expect(s.headers[1]!.regex!.test('gold')).toBe(true);
    expect(s.headers[1]!.regex!.test('golden')).toBe(false);
    expect(s.methods).toEqual(['POST']);
    expect(s.path).toMatchObject({ type: 'PathPrefix', value: '/v1' });
    expect(s.sourcePrincipal?.type).toBe('Distinct');
    expect(s.sourceNamespace).toMatchObject({ type: 'Exact', value: 'shop', invert: true });
    expect(s.sourceCIDR?.contains('10.1.2.3')).toBe(true);
    expect(s.sourceCIDR?.contains('11.0.0.1')).toBe(false);
  });
});

describe('BackendTrafficPolicy validation', () => {
  const bad: Array<[string, string, RegExp]> = [
    [
      'bad regex',
      `  targetRefs: [{kind: Service, name: api}]\n  rateLimit:\n    type: Local\n    local:\n      rules:\n        - clientSelectors: [{headers: [{name: x, type: RegularExpression, value: "(["}]}]\n          limit: {requests: 1, unit: Second}\n`,
      /spec\.rateLimit\.local\.rules\[0\]\.clientSelectors\[0\]\.headers\[0\]\.value: invalid regular expression/,
    ],
    [
      'Distinct with a value',
      `  targetRefs: [{kind: Service, name: api}]\n  rateLimit:\n    type: Local\n    local:\n      rules:\n        - clientSelectors: [{sourcePrincipal: {type: Distinct, value: x}}]\n          limit: {requests: 1, unit: Second}\n`,
      /clientSelectors\[0\]\.sourcePrincipal\.value: type Distinct takes no value/,
    ],
    [
      'bad CIDR',
      `  targetRefs: [{kind: Service, name: api}]\n  rateLimit:\n    type: Local\n    local:\n      rules:\n        - clientSelectors: [{sourceCIDR: {value: 10.0.0.0/33}}]\n          limit: {requests: 1, unit: Second}\n`,
      /clientSelectors\[0\]\.sourceCIDR\.value: expected a CIDR, got "10\.0\.0\.0\/33"/,
    ],
    [
      'bad unit',
      `  targetRefs: [{kind: Service, name: api}]\n  rateLimit:\n    type: Local\n    local:\n      rules:\n        - limit: {requests: 1, unit: Fortnight}\n`,
      /spec\.rateLimit\.local\.rules\[0\]\.limit\.unit: expected one of/,
    ],
    [
      'type without its block',
      `  targetRefs: [{kind: Service, name: api}]\n  rateLimit:\n    type: Global\n    local:\n      rules:\n        - limit: {requests: 1, unit: Second}\n`,
      /spec\.rateLimit\.global: type Global needs spec\.rateLimit\.global/,
    ],
    [
      'negative requests',
      `  targetRefs: [{kind: Service, name: api}]\n  rateLimit:\n    type: Local\n    local:\n      rules:\n        - limit: {requests: -1, unit: Second}\n`,
      /spec\.rateLimit\.local\.rules\[0\]\.limit\.requests/,
    ],
  ];

  it.each(bad)('rejects %s with file, kind, ns/name and field', async (_what, spec, field) => {
    const store = new ResourceStore();
    const report = await load(store, btp('bad', spec));
    expect(report.rejected).toHaveLength(1);
    const m = report.rejected[0]!;
    expect(m.message).toMatch(/mesh\.yaml#\d+: BackendTrafficPolicy shop\/bad: /);
    expect(m.message).toMatch(field);
    expect(m).toMatchObject({ kind: 'BackendTrafficPolicy', namespace: 'shop', name: 'bad' });
    const config = compile(store).filters[FILTER_NAME] as RateLimitConfig;
    expect(config.services).toEqual({});
  });

  it('keeps the last good version when an edit is invalid', async () => {
    const store = new ResourceStore();
    await load(store, btp('p', `  targetRefs: [{kind: Service, name: api}]\n${LOCAL_10}`));
    const report = await load(
      store,
      btp(
        'p',
        `  targetRefs: [{kind: Service, name: api}]\n  rateLimit:\n    type: Local\n    local:\n      rules:\n        - clientSelectors: [{headers: [{name: x, type: Exact}]}]\n          limit: {requests: 1, unit: Second}\n`,
      ),
    );
    expect(report.rejected[0]!.message).toMatch(
      /headers\[0\]\.value: type Exact needs a value.*keeping the last good version/s,
    );
    const config = compile(store).filters[FILTER_NAME] as RateLimitConfig;
    expect(config.services['shop/api']![0]!.rule).toMatchObject({ requests: 10, unit: 'Minute' });
  });

  it('warns about the block that type does not select', async () => {
    const { snapshot } = await compiled(
      btp(
        'both-blocks',
        `  targetRefs: [{kind: Service, name: api}]\n  rateLimit:\n    type: Local\n    local:\n      rules: [{limit: {requests: 1, unit: Second}}]\n    global:\n      rules: [{limit: {requests: 1, unit: Second}}]\n`,
      ),
    );
    expect(snapshot.messages.map((m) => m.message)).toContainEqual(
      expect.stringMatching(
        /BackendTrafficPolicy shop\/both-blocks: spec\.rateLimit\.global: ignored: spec\.rateLimit\.type is Local/,
      ),
    );
  });
});

/** A replica of the waypoint as Istio labels it; `ready: false` carries a Ready=False condition. */
function waypointPod(name: string, opts: { ready?: boolean; phase?: string } = {}): string {
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: shop
  labels:
    gateway.networking.k8s.io/gateway-name: waypoint
status:
  phase: ${opts.phase ?? 'Running'}
  conditions: [{type: Ready, status: "${opts.ready === false ? 'False' : 'True'}"}]
`;
}

const WAYPOINT_SCOPED = (scope: string, type = 'Local') =>
  `  targetRefs: [{kind: Service, name: api}]\n  rateLimit:\n    type: ${type}\n    ${type === 'Local' ? 'local' : 'global'}:\n      scope: ${scope}\n      rules:\n        - limit: {requests: 10, unit: Hour}\n`;

describe('Local limits with scope Waypoint', () => {
  const rule = async (...extra: string[]) => (await compiled(...extra)).config.services['shop/api']![0]!.rule;

  it.each([
    [2, 5],
    [3, 4],
  ])('with %i live replicas each enforces ceil(10 / replicas) = %i', async (replicas, share) => {
    const pods = Array.from({ length: replicas }, (_, i) => waypointPod(`waypoint-${i}`));
    expect(await rule(btp('p', WAYPOINT_SCOPED('Waypoint')), ...pods)).toMatchObject({
      requests: share,
      configuredRequests: 10,
      scope: 'Waypoint',
      replicas,
    });
  });

  it('counts only Ready replicas', async () => {
    const r = await rule(
      btp('p', WAYPOINT_SCOPED('Waypoint')),
      waypointPod('waypoint-a'),
      waypointPod('waypoint-b'),
      waypointPod('waypoint-starting', { ready: false }),
    );
    expect(r.requests).toBe(5);
  });

  it('scope Replica (the default) keeps the limit per replica', async () => {
    const pods = [waypointPod('waypoint-a'), waypointPod('waypoint-b')];
    expect(await rule(btp('p', WAYPOINT_SCOPED('Replica')), ...pods)).toMatchObject({
      requests: 10,
      scope: 'Replica',
    });
    expect(
      (await rule(btp('p', `  targetRefs: [{kind: Service, name: api}]\n${LOCAL_10}`), ...pods)).requests,
    ).toBe(10);
  });

  it('without a known replica count, keeps the whole limit and says why', async () => {
    const { config, snapshot } = await compiled(btp('p', WAYPOINT_SCOPED('Waypoint')));
    expect(config.services['shop/api']![0]!.rule.requests).toBe(10);
    expect(snapshot.messages.map((m) => m.message)).toContainEqual(
      expect.stringMatching(
        /BackendTrafficPolicy shop\/p: spec\.rateLimit\.local\.scope: scope Waypoint, but no Ready Pod of waypoint shop\/waypoint .*assuming 1 replica/,
      ),
    );
  });

  it('rejects an unknown scope', async () => {
    const store = new ResourceStore();
    const report = await load(store, btp('bad', WAYPOINT_SCOPED('Cluster')));
    expect(report.rejected[0]!.message).toMatch(
      /spec\.rateLimit\.local\.scope: expected one of "Replica", "Waypoint"/,
    );
  });
});
