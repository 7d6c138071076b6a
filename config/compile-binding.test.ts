import { afterAll, describe, expect, it } from 'vitest';
import { compileSnapshot, type FilterCompiler } from './compile.ts';
import { readManifests } from './load.ts';
import type { Snapshot } from './model.ts';
import { ResourceStore } from './store.ts';
import {
  compileFiles,
  docs,
  namespace,
  OPTS,
  pod,
  removeTrees,
  service,
  waypointGateway,
  writeTree,
} from './test-support.ts';

afterAll(removeTrees);

const USE = 'istio.io/use-waypoint';
const USE_NS = 'istio.io/use-waypoint-namespace';
const FOR = 'istio.io/waypoint-for';

/** `namespace/name` of every bound Service, once each. */
function boundServices(s: Snapshot): string[] {
  return [...new Set([...s.services.values()].map((b) => `${b.service.namespace}/${b.service.name}`))].sort();
}

function boundPods(s: Snapshot): string[] {
  return [...new Set([...s.workloads.values()].map((w) => `${w.pod.namespace}/${w.pod.name}`))].sort();
}

async function compile(...objects: unknown[]): Promise<Snapshot> {
  const { snapshot, report } = await compileFiles({ 'config.yaml': docs(...objects) });
  expect(report.rejected).toEqual([]);
  return snapshot;
}

describe('which Services use this waypoint', () => {
  it('binds a Service through its namespace label', async () => {
    const s = await compile(
      waypointGateway(),
      namespace('bank', { [USE]: 'waypoint' }),
      service({ name: 'frontend' }),
    );
    expect(boundServices(s)).toEqual(['bank/frontend']);
    expect([...s.services.keys()]).toEqual(['127.0.10.1:80']);
    expect(s.services.get('127.0.10.1:80')).toMatchObject({
      kind: 'service',
      key: '127.0.10.1:80',
      port: 80,
      portName: 'http',
      protocol: 'http',
      service: { namespace: 'bank', name: 'frontend', hostname: 'frontend.bank.svc.cluster.local' },
    });
  });

  it('lets the Service label beat the namespace label, both ways', async () => {
    const s = await compile(
      waypointGateway(),
      namespace('bank', { [USE]: 'other-waypoint' }),
      service({ name: 'mine', labels: { [USE]: 'waypoint' }, clusterIP: '127.0.10.1' }),
      service({ name: 'inherits', clusterIP: '127.0.10.2' }),
    );
    expect(boundServices(s)).toEqual(['bank/mine']);

    const t = await compile(
      waypointGateway(),
      namespace('bank', { [USE]: 'waypoint' }),
      service({ name: 'elsewhere', labels: { [USE]: 'other-waypoint' }, clusterIP: '127.0.10.1' }),
      service({ name: 'inherits', clusterIP: '127.0.10.2' }),
    );
    expect(boundServices(t)).toEqual(['bank/inherits']);
  });

  it('treats "none" as opting out: on the Service over a namespace label, and on the namespace', async () => {
    const s = await compile(
      waypointGateway(),
      namespace('bank', { [USE]: 'waypoint' }),
      service({ name: 'optout', labels: { [USE]: 'none' }, clusterIP: '127.0.10.1' }),
      service({ name: 'inherits', clusterIP: '127.0.10.2' }),
    );
    expect(boundServices(s)).toEqual(['bank/inherits']);

    const t = await compile(
      waypointGateway(),
      namespace('bank', { [USE]: 'none' }),
      service({ name: 'frontend' }),
    );
    expect(boundServices(t)).toEqual([]);
  });

  it('follows use-waypoint-namespace on the Service and on the namespace; without it the waypoint is looked up locally', async () => {
    const all = { from: 'All' };
    const s = await compile(
      waypointGateway({ allowedRoutes: all }),
      namespace('shop', {}),
      service({
        name: 'cross',
        namespace: 'shop',
        labels: { [USE]: 'waypoint', [USE_NS]: 'bank' },
        clusterIP: '127.0.10.1',
      }),
      service({ name: 'local', namespace: 'shop', labels: { [USE]: 'waypoint' }, clusterIP: '127.0.10.2' }),
    );
    expect(boundServices(s)).toEqual(['shop/cross']);

    const t = await compile(
      waypointGateway({ allowedRoutes: all }),
      namespace('shop', { [USE]: 'waypoint', [USE_NS]: 'bank' }),
      service({ name: 'inherits', namespace: 'shop' }),
    );
    expect(boundServices(t)).toEqual(['shop/inherits']);
  });

  it('never binds a waypoint Service, a headless Service or one without a cluster IP', async () => {
    const s = await compile(
      waypointGateway(),
      namespace('bank', { [USE]: 'waypoint' }),
      service({ name: 'waypoint', labels: { 'gateway.istio.io/managed': 'istio.io-mesh-controller' } }),
      service({ name: 'headless', clusterIP: 'None' }),
      service({ name: 'pending', clusterIP: '' }),
      service({ name: 'frontend', clusterIP: '127.0.10.7' }),
    );
    expect(boundServices(s)).toEqual(['bank/frontend']);
  });

  it('keys every ClusterIP and port, IPv6 in brackets', async () => {
    const s = await compile(
      waypointGateway(),
      namespace('bank', { [USE]: 'waypoint' }),
      service({
        name: 'dual',
        clusterIP: '127.0.10.1',
        clusterIPs: ['127.0.10.1', '0:0:0:0:0:0:0:1'],
        ports: [
          { name: 'http', port: 80 },
          { name: 'grpc', port: 9090 },
        ],
      }),
    );
    expect([...s.services.keys()].sort()).toEqual([
      '127.0.10.1:80',
      '127.0.10.1:9090',
      '[::1]:80',
      '[::1]:9090',
    ]);
  });
});

describe('istio.io/waypoint-for', () => {
  const world = [
    namespace('bank', { [USE]: 'waypoint' }),
    service({ name: 'frontend', selector: { app: 'frontend' } }),
    pod({ name: 'frontend-1', labels: { app: 'frontend' }, ip: '127.0.20.1' }),
  ];

  it.each([
    [undefined, 'service', ['bank/frontend'], []],
    ['service', 'service', ['bank/frontend'], []],
    ['workload', 'workload', [], ['bank/frontend-1']],
    ['all', 'all', ['bank/frontend'], ['bank/frontend-1']],
    ['none', 'none', [], []],
  ])('on the Gateway: %s → %s', async (value, trafficType, services, pods) => {
    const s = await compile(waypointGateway(value ? { labels: { [FOR]: value } } : {}), ...world);
    expect(s.gateway.trafficType).toBe(trafficType);
    expect(boundServices(s)).toEqual(services);
    expect(boundPods(s)).toEqual(pods);
  });

  it('says why nothing is served for "none"', async () => {
    const s = await compile(waypointGateway({ labels: { [FOR]: 'none' } }), ...world);
    expect(s.gateway.conditions).toContain('istio.io/waypoint-for is "none"; serving nothing');
  });

  const gatewayClass = (labels: Record<string, string>) => ({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'GatewayClass',
    metadata: { name: 'istio-waypoint', labels },
    spec: { controllerName: 'istio.io/mesh-controller' },
  });

  it('falls back to the GatewayClass label, and the Gateway label beats it', async () => {
    const fromClass = await compile(waypointGateway(), gatewayClass({ [FOR]: 'workload' }), ...world);
    expect(fromClass.gateway.trafficType).toBe('workload');
    expect(boundPods(fromClass)).toEqual(['bank/frontend-1']);

    const gatewayWins = await compile(
      waypointGateway({ labels: { [FOR]: 'all' } }),
      gatewayClass({ [FOR]: 'workload' }),
      ...world,
    );
    expect(gatewayWins.gateway.trafficType).toBe('all');
  });

  it('warns about an unknown value and treats it as service', async () => {
    const s = await compile(waypointGateway({ labels: { [FOR]: 'everything' } }), ...world);
    expect(s.gateway.trafficType).toBe('service');
    expect(boundServices(s)).toEqual(['bank/frontend']);
    expect(s.messages.map((m) => m.message)).toContainEqual(
      expect.stringContaining(
        'istio.io/waypoint-for "everything" (Gateway label) is not one of service, workload, all, none',
      ),
    );
  });
});

describe('allowedRoutes on the HBONE listener', () => {
  const cross = (ns: string, ip: string) =>
    service({
      name: `svc-${ns}`,
      namespace: ns,
      labels: { [USE]: 'waypoint', [USE_NS]: 'bank' },
      clusterIP: ip,
    });
  const namespaces = [
    namespace('bank'),
    namespace('shop', { team: 'retail', tier: 'web' }),
    namespace('lab', { team: 'research' }),
    // "bare" has no Namespace resource, so no labels.
  ];
  const services = [
    cross('bank', '127.0.10.1'),
    cross('shop', '127.0.10.2'),
    cross('lab', '127.0.10.3'),
    cross('bare', '127.0.10.4'),
  ];

  async function admitted(allowedRoutes?: unknown): Promise<string[]> {
    const s = await compile(
      waypointGateway(allowedRoutes ? { allowedRoutes } : {}),
      ...namespaces,
      ...services,
    );
    return boundServices(s).map((x) => x.split('/')[0]!);
  }

  it('admits only the Gateway namespace by default (Same), and warns about the refused', async () => {
    expect(await admitted()).toEqual(['bank']);
    expect(await admitted({ from: 'Same' })).toEqual(['bank']);
    const s = await compile(waypointGateway(), ...namespaces, ...services);
    expect(s.messages.map((m) => m.message)).toContainEqual(
      expect.stringMatching(
        /Service shop\/svc-shop: asks for waypoint bank\/waypoint .* allowedRoutes \(Same\) does not admit namespace shop$/,
      ),
    );
  });

  it('admits every namespace with All', async () => {
    expect(await admitted({ from: 'All' })).toEqual(['bank', 'bare', 'lab', 'shop']);
  });

  it.each([
    [{ matchLabels: { team: 'retail' } }, ['shop']],
    [
      { matchExpressions: [{ key: 'team', operator: 'In', values: ['retail', 'research'] }] },
      ['lab', 'shop'],
    ],
    [{ matchExpressions: [{ key: 'team', operator: 'NotIn', values: ['retail'] }] }, ['bank', 'bare', 'lab']],
    [{ matchExpressions: [{ key: 'team', operator: 'Exists' }] }, ['lab', 'shop']],
    [{ matchExpressions: [{ key: 'team', operator: 'DoesNotExist' }] }, ['bank', 'bare']],
    [
      {
        matchLabels: { team: 'retail' },
        matchExpressions: [{ key: 'tier', operator: 'In', values: ['db'] }],
      },
      [],
    ],
  ])('admits namespaces whose labels match the Selector %j', async (selector, expected) => {
    expect(await admitted({ from: 'Selector', selector })).toEqual(expected);
  });

  it('admits nothing for Selector without a selector, and says so', async () => {
    const s = await compile(
      waypointGateway({ allowedRoutes: { from: 'Selector' } }),
      ...namespaces,
      ...services,
    );
    expect(boundServices(s)).toEqual([]);
    expect(s.messages.map((m) => m.message)).toContainEqual(
      expect.stringContaining('no namespace is admitted'),
    );
  });

  it('applies to workloads too', async () => {
    const pods = [
      pod({ name: 'p-bank', namespace: 'bank', labels: { [USE]: 'waypoint' }, ip: '127.0.20.1' }),
      pod({
        name: 'p-shop',
        namespace: 'shop',
        labels: { [USE]: 'waypoint', [USE_NS]: 'bank' },
        ip: '127.0.20.2',
      }),
    ];
    const same = await compile(waypointGateway({ labels: { [FOR]: 'workload' } }), ...namespaces, ...pods);
    expect(boundPods(same)).toEqual(['bank/p-bank']);
    const all = await compile(
      waypointGateway({ labels: { [FOR]: 'workload' }, allowedRoutes: { from: 'All' } }),
      ...namespaces,
      ...pods,
    );
    expect(boundPods(all)).toEqual(['bank/p-bank', 'shop/p-shop']);
  });
});

describe('the Gateway', () => {
  it('serves nothing when it is missing, and says so', async () => {
    const s = await compile(namespace('bank', { [USE]: 'waypoint' }), service({ name: 'frontend' }));
    expect(s.gateway).toMatchObject({ found: false, ref: { namespace: 'bank', name: 'waypoint' } });
    expect(s.gateway.conditions).toEqual([
      'Gateway bank/waypoint not found in the configuration; serving nothing',
    ]);
    expect(s.services.size).toBe(0);
  });

  it('serves nothing without a port 15008 HBONE listener, with Istio’s words', async () => {
    const s = await compile(
      waypointGateway({ listeners: [{ name: 'mesh', port: 15009, protocol: 'HBONE' }] }),
      namespace('bank', { [USE]: 'waypoint' }),
      service({ name: 'frontend' }),
    );
    expect(s.gateway.found).toBe(true);
    expect(s.gateway.conditions).toContain(
      'Expected a single listener on port 15008 with protocol "HBONE"; none found, serving nothing',
    );
    expect(s.services.size).toBe(0);
  });

  it('ignores extra listeners and an unusual class, with warnings, and still serves', async () => {
    const s = await compile(
      waypointGateway({
        className: 'my-waypoints',
        listeners: [
          { name: 'http', port: 80, protocol: 'HTTP' },
          { name: 'mesh', port: 15008, protocol: 'HBONE' },
        ],
      }),
      namespace('bank', { [USE]: 'waypoint' }),
      service({ name: 'frontend' }),
    );
    expect(boundServices(s)).toEqual(['bank/frontend']);
    expect(s.gateway.gatewayClassName).toBe('my-waypoints');
    const texts = s.messages.map((m) => m.message);
    expect(texts).toContainEqual(
      expect.stringContaining('spec.gatewayClassName is "my-waypoints", not "istio-waypoint"'),
    );
    expect(texts).toContainEqual(
      expect.stringContaining('listener "http" (80/HTTP) ignored: Expected a single listener on port 15008'),
    );
  });
});

describe('which pods use this waypoint', () => {
  const gw = waypointGateway({ labels: { [FOR]: 'workload' } });

  it('lets the pod label beat the namespace label, and "none" opt out', async () => {
    const s = await compile(
      gw,
      namespace('bank', { [USE]: 'other-waypoint' }),
      pod({ name: 'mine', labels: { [USE]: 'waypoint' }, ip: '127.0.20.1' }),
      pod({ name: 'inherits', ip: '127.0.20.2' }),
    );
    expect(boundPods(s)).toEqual(['bank/mine']);

    const t = await compile(
      gw,
      namespace('bank', { [USE]: 'waypoint' }),
      pod({ name: 'optout', labels: { [USE]: 'none' }, ip: '127.0.20.1' }),
      pod({ name: 'inherits', ip: '127.0.20.2' }),
    );
    expect(boundPods(t)).toEqual(['bank/inherits']);
  });

  it('keys a workload by every pod IP, with its identity and readiness', async () => {
    const s = await compile(
      gw,
      namespace('bank', { [USE]: 'waypoint' }),
      pod({
        name: 'ledger-0',
        serviceAccount: 'ledger',
        status: {
          phase: 'Running',
          podIP: '127.0.20.5',
          podIPs: [{ ip: '127.0.20.5' }, { ip: '::1' }],
          conditions: [{ type: 'Ready', status: 'False' }],
        },
      }),
      pod({ name: 'done', ip: '127.0.20.6', status: { phase: 'Succeeded', podIP: '127.0.20.6' } }),
    );
    expect([...s.workloads.keys()].sort()).toEqual(['127.0.20.5', '::1']);
    expect(s.workloads.get('127.0.20.5')).toMatchObject({
      kind: 'workload',
      ip: '127.0.20.5',
      identity: 'spiffe://td.example/ns/bank/sa/ledger',
      ready: false,
      pod: { namespace: 'bank', name: 'ledger-0', serviceAccount: 'ledger' },
    });
  });

  it('warns when a pod asks for this waypoint by its own label but the waypoint takes only services', async () => {
    const s = await compile(
      waypointGateway(),
      pod({ name: 'p', labels: { [USE]: 'waypoint' }, ip: '127.0.20.1' }),
    );
    expect(boundPods(s)).toEqual([]);
    expect(s.messages.map((m) => m.message)).toContainEqual(
      expect.stringContaining(
        'Pod bank/p: asks for waypoint bank/waypoint, which takes service traffic, not workload traffic',
      ),
    );
  });
});

describe('the snapshot', () => {
  const files = {
    'config.yaml': docs(
      waypointGateway(),
      namespace('bank', { [USE]: 'waypoint' }),
      service({ name: 'frontend', selector: { app: 'frontend' } }),
      pod({ name: 'frontend-1', labels: { app: 'frontend' }, ip: '127.0.20.1' }),
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'ignored' } },
    ),
  };

  it('is deep-frozen, counts resources by kind, and is the same for the same input', async () => {
    const dir = await writeTree(files);
    const store = new ResourceStore();
    store.update(await readManifests([dir]));
    const a = compileSnapshot(store.resources(), OPTS, 7);
    const b = compileSnapshot(store.resources(), OPTS, 7);
    expect(a.version).toBe(7);
    expect(a.createdAt).toBe('1970-01-01T00:00:00.000Z');
    expect(a.resourceCounts).toEqual({ Gateway: 1, Namespace: 1, Pod: 1, Service: 1 });
    expect(JSON.stringify({ ...a, services: [...a.services] })).toBe(
      JSON.stringify({ ...b, services: [...b.services] }),
    );
    const binding = a.services.get('127.0.10.1:80')!;
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(binding.endpoints[0])).toBe(true);
    expect(() => (a.services as Map<string, unknown>).set('x', 1)).toThrow(TypeError);
    expect(() => (a.workloads as Map<string, unknown>).delete('x')).toThrow(TypeError);
  });

  it('passes resources and the bound snapshot to filter compilers and keeps their output', async () => {
    const dir = await writeTree(files);
    const store = new ResourceStore();
    store.update(await readManifests([dir]));
    const seen: string[] = [];
    const countServices: FilterCompiler = (resources, base) => {
      seen.push(`${resources.length} ${base.services.size}`);
      return {
        config: { services: base.services.size },
        messages: [{ severity: 'warning', message: 'from the filter' }],
      };
    };
    const s = compileSnapshot(store.resources(), OPTS, 1, { count: countServices });
    expect(seen).toEqual(['4 1']);
    expect(s.filters).toEqual({ count: { services: 1 } });
    expect(s.messages.at(-1)?.message).toBe('from the filter');
    expect(Object.isFrozen(s.filters['count'])).toBe(true);
  });
});
