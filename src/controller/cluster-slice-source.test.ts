import { beforeEach, describe, expect, it } from 'vitest';
import { fixture, KINDS, ns, pod, policy, slice } from '../../test/helpers/cluster-fixture.ts';
import { ClusterSliceSource } from './cluster-slice-source.ts';
import type { KubeDocument } from './slice-source.ts';

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

  it("carries the Telemetry of the root namespace, the waypoint's and its Services' namespaces", () => {
    const telemetry = (namespace: string, name: string): KubeDocument => ({
      apiVersion: 'telemetry.istio.io/v1',
      kind: 'Telemetry',
      metadata: { namespace, name },
      spec: { tracing: [{ randomSamplingPercentage: 10 }] },
    });
    load([
      ...fixture(),
      telemetry('istio-system', 'mesh-default'),
      telemetry('shop', 'shop-logs'),
      telemetry('bank', 'bank-logs'),
      telemetry('elsewhere', 'not-ours'),
    ]);
    const got = names('shop/waypoint');
    expect(got).toEqual(
      expect.arrayContaining([
        'Telemetry istio-system/mesh-default',
        'Telemetry shop/shop-logs',
        'Telemetry bank/bank-logs',
      ]),
    );
    expect(got).not.toContain('Telemetry elsewhere/not-ours');
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
