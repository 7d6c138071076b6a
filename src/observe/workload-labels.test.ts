import { describe, expect, it } from 'vitest';
import type { PodInfo } from '../../config/model.ts';
import { baggageWorkload, podWorkload } from './workload-labels.ts';

const pod = (labels: Record<string, string>): PodInfo => ({
  namespace: 'shop',
  name: 'reviews-v1-abc-xyz',
  serviceAccount: 'reviews',
  workload: 'reviews-v1',
  labels,
});

describe('podWorkload (Istio canonical service and revision fallbacks)', () => {
  it('prefers the canonical-name/revision labels, then app.kubernetes.io/*, then app/version', () => {
    const all = {
      'service.istio.io/canonical-name': 'cn',
      'service.istio.io/canonical-revision': 'cr',
      'app.kubernetes.io/name': 'kn',
      'app.kubernetes.io/version': 'kv',
      app: 'a',
      version: 'v',
    };
    expect(podWorkload(pod(all), 'p', 'c')).toMatchObject({
      canonicalService: 'cn',
      canonicalRevision: 'cr',
      app: 'a',
      version: 'v',
    });
    const { 'service.istio.io/canonical-name': _n, 'service.istio.io/canonical-revision': _r, ...k8s } = all;
    expect(podWorkload(pod(k8s), 'p', 'c')).toMatchObject({
      canonicalService: 'kn',
      canonicalRevision: 'kv',
    });
    expect(podWorkload(pod({ app: 'a', version: 'v' }), 'p', 'c')).toMatchObject({
      canonicalService: 'a',
      canonicalRevision: 'v',
    });
  });
  it('falls back to the workload name and latest; app and version unknown', () => {
    expect(podWorkload(pod({}), 'spiffe://td/ns/shop/sa/reviews', 'west')).toEqual({
      workload: 'reviews-v1',
      namespace: 'shop',
      principal: 'spiffe://td/ns/shop/sa/reviews',
      app: 'unknown',
      version: 'unknown',
      canonicalService: 'reviews-v1',
      canonicalRevision: 'latest',
      cluster: 'west',
    });
  });
});

describe('baggageWorkload (what ztunnel sends on its CONNECT)', () => {
  it('reads cluster, namespace, workload of any kind, service name and version', () => {
    expect(
      baggageWorkload(
        'k8s.cluster.name=east,k8s.namespace.name=shop,k8s.statefulset.name=db,service.name=database,service.version=15',
        'p',
        'west',
      ),
    ).toEqual({
      workload: 'db',
      namespace: 'shop',
      principal: 'p',
      app: 'database',
      version: '15',
      canonicalService: 'database',
      canonicalRevision: '15',
      cluster: 'east',
    });
  });
  it('takes app.name/app.version when present, decodes percent-encoding, ignores properties and junk', () => {
    expect(
      baggageWorkload(
        ' k8s.namespace.name=shop ;prop=1,k8s.deployment.name=my%2Dapp,app.name=web,app.version=v3,=x,novalue',
        'p',
        'west',
      ),
    ).toMatchObject({ workload: 'my-app', namespace: 'shop', app: 'web', version: 'v3', cluster: 'west' });
  });
  it('is undefined without a workload or a namespace (the pod lookup decides then)', () => {
    expect(baggageWorkload('k8s.namespace.name=shop', 'p', 'c')).toBeUndefined();
    expect(baggageWorkload('k8s.deployment.name=x', 'p', 'c')).toBeUndefined();
    expect(baggageWorkload('', 'p', 'c')).toBeUndefined();
  });
});
