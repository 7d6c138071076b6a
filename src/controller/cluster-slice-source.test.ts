import { beforeEach, describe, expect, it } from 'vitest';
import { ClusterSliceSource } from './cluster-slice-source.ts';
import type { KubeDocument } from './slice-source.ts';

const GW = 'gateway.networking.k8s.io/v1';
const KINDS = ['Namespace', 'Service', 'Pod', 'EndpointSlice', 'Gateway', 'GatewayClass', 'HTTPRoute'];

function doc(
  apiVersion: string,
  kind: string,
  ns: string | undefined,
  name: string,
  rest: object = {},
): KubeDocument {
  const { labels, annotations, ...body } = rest as { labels?: object; annotations?: object };
  return {
    apiVersion,
    kind,
    metadata: { name, ...(ns ? { namespace: ns } : {}), resourceVersion: '1', labels, annotations },
    ...body,
  };
}
const ns = (name: string, labels: Record<string, string> = {}) =>
  doc('v1', 'Namespace', undefined, name, { labels });
const svc = (n: string, name: string, labels: Record<string, string> = {}) =>
  doc('v1', 'Service', n, name, {
    labels,
    spec: { clusterIP: '10.96.0.1', selector: { app: name }, ports: [{ port: 80 }] },
  });
const pod = (n: string, name: string, app: string, ip: string) =>
  doc('v1', 'Pod', n, name, { labels: { app }, spec: { serviceAccountName: app }, status: { podIP: ip } });
const slice = (n: string, service: string, pods: string[]) =>
  doc('discovery.k8s.io/v1', 'EndpointSlice', n, `${service}-abc`, {
    labels: { 'kubernetes.io/service-name': service },
    addressType: 'IPv4',
    endpoints: pods.map((p) => ({
      addresses: ['10.0.0.1'],
      targetRef: { kind: 'Pod', name: p, namespace: n },
    })),
  });
const route = (n: string, name: string, parent: string, backend: { name: string; namespace?: string }) =>
  doc(GW, 'HTTPRoute', n, name, {
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: parent }],
      rules: [{ backendRefs: [{ ...backend, port: 80 }] }],
    },
  });
const policy = (n: string, name: string, targetRef: object) =>
  doc('security.istio.io/v1', 'AuthorizationPolicy', n, name, {
    spec: { targetRefs: [targetRef], action: 'DENY' },
  });

function fixture(): KubeDocument[] {
  return [
    doc(GW, 'GatewayClass', undefined, 'istio-waypoint', {
      spec: { controllerName: 'istio.io/mesh-controller' },
    }),
    doc(GW, 'GatewayClass', undefined, 'custom', { spec: { controllerName: 'istio.io/mesh-controller' } }),
    doc(GW, 'GatewayClass', undefined, 'ingress', {
      spec: { controllerName: 'istio.io/gateway-controller' },
    }),
    doc(GW, 'Gateway', 'shop', 'waypoint', { spec: { gatewayClassName: 'istio-waypoint', listeners: [] } }),
    doc(GW, 'Gateway', 'other', 'wp2', {
      spec: { gatewayClassName: 'custom' },
      annotations: { 'gateway.istio.io/service-account': 'wp2-sa' },
    }),
    doc(GW, 'Gateway', 'other', 'ingress', { spec: { gatewayClassName: 'ingress' } }),
    ns('shop', { 'istio.io/use-waypoint': 'waypoint' }),
    ns('bank'),
    ns('other'),
    ns('istio-system'),
    svc('shop', 'reviews'),
    slice('shop', 'reviews', ['r1']),
    pod('shop', 'r1', 'reviews', '10.0.0.1'),
    pod('shop', 'stray', 'stray', '10.0.0.9'),
    svc('bank', 'ledger'),
    slice('bank', 'ledger', ['l1']),
    pod('bank', 'l1', 'ledger', '10.0.1.1'),
    svc('bank', 'vault', { 'istio.io/use-waypoint': 'waypoint', 'istio.io/use-waypoint-namespace': 'shop' }),
    slice('bank', 'vault', []),
    svc('bank', 'unbound'),
    pod('bank', 'u1', 'unbound', '10.0.1.9'),
    route('shop', 'reviews-route', 'reviews', { name: 'ledger', namespace: 'bank' }),
    route('bank', 'ledger-route', 'ledger', { name: 'unbound' }),
    doc('gateway.networking.k8s.io/v1beta1', 'ReferenceGrant', 'bank', 'from-shop', { spec: {} }),
    policy('shop', 'on-gateway', { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint' }),
    policy('istio-system', 'on-class', {
      group: 'gateway.networking.k8s.io',
      kind: 'GatewayClass',
      name: 'istio-waypoint',
    }),
    policy('shop', 'on-class-not-root', {
      group: 'gateway.networking.k8s.io',
      kind: 'GatewayClass',
      name: 'istio-waypoint',
    }),
    policy('bank', 'on-unbound', { kind: 'Service', name: 'unbound' }),
    policy('bank', 'on-vault', { kind: 'Service', name: 'vault' }),
    doc('networking.istio.io/v1', 'VirtualService', 'shop', 'reviews-vs', { spec: { hosts: ['reviews'] } }),
    doc('networking.istio.io/v1', 'DestinationRule', 'bank', 'ledger-dr', {
      spec: { host: 'ledger.bank.svc.cluster.local' },
    }),
    doc('networking.istio.io/v1', 'VirtualService', 'bank', 'unbound-vs', { spec: { hosts: ['unbound'] } }),
    doc('v1', 'ConfigMap', 'istio-system', 'istio', { data: { mesh: 'rootNamespace: istio-system' } }),
  ];
}

let source: ClusterSliceSource;

function load(docs: KubeDocument[]): void {
  const kinds = [...new Set([...KINDS, ...docs.map((d) => d.kind)])];
  source = new ClusterSliceSource(kinds, { rootNamespace: 'istio-system', clusterDomain: 'cluster.local' });
  for (const d of docs) source.handlerFor(d.kind).upsert(d);
  for (const k of kinds) source.handlerFor(k).synced();
}

const names = (gateway: string): string[] =>
  [...(source.slice(gateway)?.documents.values() ?? [])].map(
    (d) => `${d.kind} ${d.metadata.namespace ? `${d.metadata.namespace}/` : ''}${d.metadata.name}`,
  );

beforeEach(() => load(fixture()));

describe('ClusterSliceSource', () => {
  it('is not synced, and has no slice, until every kind has listed', () => {
    const s = new ClusterSliceSource(['Pod', 'Service'], {
      rootNamespace: 'istio-system',
      clusterDomain: 'cluster.local',
    });
    s.handlerFor('Pod').synced();
    expect(s.synced).toBe(false);
    expect(s.slice('shop/waypoint')).toBeUndefined();
    s.handlerFor('Service').synced();
    expect(s.synced).toBe(true);
  });

  it('finds waypoint Gateways by class name or mesh controller, and maps ns/sa to them', () => {
    expect(source.waypoints().sort()).toEqual(['other/wp2', 'shop/waypoint']);
    expect(source.gatewaysFor('shop', 'waypoint')).toEqual(['shop/waypoint']);
    expect(source.gatewaysFor('shop', 'default')).toEqual([]);
    expect(source.gatewaysFor('other', 'wp2-sa')).toEqual(['other/wp2']);
    expect(source.gatewaysFor('other', 'ingress')).toEqual([]);
  });

  it('puts into a slice what binds to it, and nothing else', () => {
    const got = names('shop/waypoint');
    expect(got).toEqual(
      expect.arrayContaining([
        'Gateway shop/waypoint',
        'GatewayClass istio-waypoint',
        'Namespace shop',
        'Namespace bank',
        'Service shop/reviews',
        'EndpointSlice shop/reviews-abc',
        'Pod shop/r1',
        'Service bank/vault',
        'HTTPRoute shop/reviews-route',
        'Service bank/ledger',
        'EndpointSlice bank/ledger-abc',
        'Pod bank/l1',
        'ReferenceGrant bank/from-shop',
        'AuthorizationPolicy shop/on-gateway',
        'AuthorizationPolicy istio-system/on-class',
        'AuthorizationPolicy bank/on-vault',
        'VirtualService shop/reviews-vs',
        'DestinationRule bank/ledger-dr',
        'ConfigMap istio-system/istio',
      ]),
    );
    for (const absent of [
      'Pod shop/stray',
      'Service bank/unbound',
      'Pod bank/u1',
      'HTTPRoute bank/ledger-route',
      'AuthorizationPolicy shop/on-class-not-root',
      'AuthorizationPolicy bank/on-unbound',
      'VirtualService bank/unbound-vs',
      'Gateway other/wp2',
      'GatewayClass custom',
    ]) {
      expect(got).not.toContain(absent);
    }
  });

  it('tells a subscriber about a change to its pods, and not about pods that are not its', () => {
    const before = source.slice('shop/waypoint')?.version;
    let calls = 0;
    source.subscribe('shop/waypoint', () => calls++);
    source.handlerFor('Pod').upsert(pod('shop', 'stray', 'stray', '10.0.0.8'));
    source.handlerFor('Pod').upsert(pod('bank', 'u1', 'unbound', '10.0.1.8'));
    expect(calls).toBe(0);
    expect(source.slice('shop/waypoint')?.version).toBe(before);
    source.handlerFor('Pod').upsert(pod('shop', 'r1', 'reviews', '10.0.0.2'));
    expect(calls).toBe(1);
    const after = source.slice('shop/waypoint');
    expect(after?.version).not.toBe(before);
    expect(after?.documents.get('/Pod/shop/r1')?.status).toEqual({ podIP: '10.0.0.2' });
  });

  it('follows a pod that joins an EndpointSlice after it was created', () => {
    expect(names('shop/waypoint')).not.toContain('Pod shop/r2');
    let calls = 0;
    source.subscribe('shop/waypoint', () => calls++);
    source.handlerFor('Pod').upsert(pod('shop', 'r2', 'reviews', '10.0.0.3'));
    source.handlerFor('EndpointSlice').upsert(slice('shop', 'reviews', ['r1', 'r2']));
    expect(calls).toBeGreaterThan(0);
    expect(names('shop/waypoint')).toContain('Pod shop/r2');
  });

  it('serves a namespace once it is labelled istio.io/use-waypoint and stops when unlabelled', () => {
    expect(names('shop/waypoint')).not.toContain('Service bank/unbound');
    let calls = 0;
    source.subscribe('shop/waypoint', () => calls++);
    const labelled = ns('bank', {
      'istio.io/use-waypoint': 'waypoint',
      'istio.io/use-waypoint-namespace': 'shop',
    });
    source.handlerFor('Namespace').upsert(labelled);
    expect(calls).toBe(1);
    expect(names('shop/waypoint')).toEqual(expect.arrayContaining(['Service bank/unbound', 'Pod bank/u1']));
    source.handlerFor('Namespace').upsert(ns('bank'));
    expect(names('shop/waypoint')).not.toContain('Service bank/unbound');
  });

  it('drops a deleted AuthorizationPolicy from the slice', () => {
    expect(names('shop/waypoint')).toContain('AuthorizationPolicy shop/on-gateway');
    source
      .handlerFor('AuthorizationPolicy')
      .remove('security.istio.io/AuthorizationPolicy/shop/on-gateway', policy('shop', 'on-gateway', {}));
    expect(names('shop/waypoint')).not.toContain('AuthorizationPolicy shop/on-gateway');
  });

  it('computes a slice from its bound objects, not by walking 10,000 unrelated pods per change', () => {
    const many: KubeDocument[] = [];
    for (let i = 0; i < 10_000; i++) many.push(pod('bank', `p${i}`, 'unbound', `10.1.${i >> 8}.${i & 255}`));
    load([...fixture(), ...many]);
    expect(names('shop/waypoint')).toHaveLength(names('shop/waypoint').length);
    let calls = 0;
    source.subscribe('shop/waypoint', () => calls++);
    for (let i = 0; i < 1000; i++)
      source.handlerFor('Pod').upsert(pod('bank', `p${i}`, 'unbound', '10.2.0.1'));
    expect(calls).toBe(0);
  });
});
