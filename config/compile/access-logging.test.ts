import { describe, expect, it } from 'vitest';
import type { ConfigMessage } from '../model.ts';
import type { Resource } from '../resource.ts';
import { compileAccessLogging } from './access-logging.ts';

const telemetry = (namespace: string, name: string, spec: Record<string, unknown>): Resource =>
  ({
    kind: 'Telemetry',
    group: 'telemetry.istio.io',
    version: 'v1',
    namespace,
    name,
    origin: `t.yaml#${name}`,
    spec: { metadata: { name, namespace }, spec },
  }) as unknown as Resource;

const GW = { namespace: 'shop', name: 'waypoint' };
const compile = (...rs: Resource[]) => {
  const messages: ConfigMessage[] = [];
  return { policy: compileAccessLogging(rs, GW, 'cluster.local', messages), messages };
};

describe('compileAccessLogging', () => {
  it('is undefined without a Telemetry that has accessLogging', () => {
    expect(compile(telemetry('shop', 't', { tracing: [{}] })).policy).toBeUndefined();
  });
  it('lets the most specific level decide: root < namespace < the waypoint (targetRefs or selector)', () => {
    const root = telemetry('istio-system', 'mesh', { accessLogging: [{}] });
    const ns = telemetry('shop', 'ns', { accessLogging: [{ disabled: true }] });
    const wp = telemetry('shop', 'wp', {
      targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }],
      accessLogging: [{ providers: [{ name: 'envoy' }] }],
    });
    const other = telemetry('bank', 'other', { accessLogging: [{ disabled: true }] });
    expect(compile(root, other).policy?.waypoint).toMatchObject({
      enabled: true,
      source: 'Telemetry istio-system/mesh',
    });
    expect(compile(root, ns).policy?.waypoint).toMatchObject({ enabled: false, source: 'Telemetry shop/ns' });
    expect(compile(root, ns, wp).policy?.waypoint).toMatchObject({ enabled: true, providers: ['envoy'] });
    const bySelector = telemetry('shop', 'sel', {
      selector: { matchLabels: { 'gateway.networking.k8s.io/gateway-name': 'waypoint' } },
      accessLogging: [{}],
    });
    expect(compile(ns, bySelector).policy?.waypoint?.enabled).toBe(true);
  });
  it('keys Service targetRefs by FQDN and warns about filters and providers it writes as envoy', () => {
    const { policy, messages } = compile(
      telemetry('shop', 'svc', {
        targetRefs: [{ kind: 'Service', group: '', name: 'reviews' }],
        accessLogging: [{ providers: [{ name: 'otel' }], filter: { expression: 'response.code >= 400' } }],
      }),
    );
    expect(policy?.waypoint).toBeUndefined();
    expect(policy?.services.get('reviews.shop.svc.cluster.local')).toMatchObject({
      enabled: true,
      providers: ['otel'],
    });
    expect(messages.map((m) => m.field)).toEqual([
      'spec.accessLogging[0].filter',
      'spec.accessLogging[0].providers',
    ]);
    expect(messages[0]?.message).toMatch(
      /^t\.yaml#svc: Telemetry shop\/svc: spec\.accessLogging\[0\]\.filter: /,
    );
  });
});
