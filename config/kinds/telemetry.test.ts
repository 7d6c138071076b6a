// Telemetry validated through the store as a user loading manifests sees it, and the mesh config's
// opentelemetry providers next to the ext_authz ones authz reads from the same file.
import { afterAll, describe, expect, it } from 'vitest';
import { parseMeshConfig } from '../../filters/authz/mesh-config.ts';
import { readManifests } from '../load.ts';
import { ResourceStore } from '../store.ts';
import { docs, removeTrees, writeTree } from '../test-support.ts';
import { parseTracingProviders } from '../tracing-providers.ts';
import { builtinKinds } from './registry.ts';
import { type Telemetry, telemetryWarnings } from './telemetry.ts';

afterAll(removeTrees);

async function load(...objects: unknown[]) {
  const store = new ResourceStore(builtinKinds());
  const report = store.update(await readManifests([await writeTree({ 't.yaml': docs(...objects) })]));
  return { resources: store.resources(), rejected: report.rejected.map((m) => m.message) };
}

const telemetry = (spec: unknown, apiVersion = 'telemetry.istio.io/v1') => ({
  apiVersion,
  kind: 'Telemetry',
  metadata: { name: 'tracing', namespace: 'istio-system' },
  spec,
});

describe('Telemetry', () => {
  it('accepts tracing, access logging and metrics in v1 and v1alpha1, and warns about metrics', async () => {
    const spec = {
      targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint' }],
      tracing: [
        {
          providers: [{ name: 'otel' }],
          randomSamplingPercentage: 12.5,
          disableSpanReporting: false,
          customTags: {
            team: { literal: { value: 'payments' } },
            zone: { environment: { name: 'ZONE', defaultValue: 'none' } },
            user: { header: { name: 'x-user' } },
          },
        },
      ],
      accessLogging: [
        { providers: [{ name: 'envoy' }], disabled: true, filter: { expression: 'response.code >= 400' } },
      ],
      metrics: [{ providers: [{ name: 'prometheus' }] }],
    };
    const alpha = {
      ...telemetry({}, 'telemetry.istio.io/v1alpha1'),
      metadata: { name: 'old', namespace: 'ns' },
    };
    const { resources, rejected } = await load(telemetry(spec), alpha);
    expect(rejected).toEqual([]);
    expect(resources.map((r) => `${r.namespace}/${r.name}`).sort()).toEqual([
      'istio-system/tracing',
      'ns/old',
    ]);
    const t = resources.find((r) => r.name === 'tracing')?.spec as Telemetry;
    expect(t.spec?.tracing?.[0]?.customTags?.zone).toEqual({
      environment: { name: 'ZONE', defaultValue: 'none' },
    });
    expect(t.spec?.accessLogging?.[0]?.disabled).toBe(true);
    expect(telemetryWarnings(t)).toEqual([expect.stringMatching(/^spec\.metrics: not enforced/)]);
  });

  it('rejects a custom tag with two sources, a percentage over 100 and selector with targetRefs', async () => {
    const { resources, rejected } = await load(
      telemetry({ tracing: [{ customTags: { t: { literal: { value: 'a' }, header: { name: 'x' } } } }] }),
      {
        ...telemetry({ tracing: [{ randomSamplingPercentage: 101 }] }),
        metadata: { name: 'b', namespace: 'ns' },
      },
      {
        ...telemetry({ selector: { matchLabels: { a: 'b' } }, targetRefs: [{ kind: 'Gateway', name: 'w' }] }),
        metadata: { name: 'c', namespace: 'ns' },
      },
    );
    expect(resources).toEqual([]);
    expect(rejected).toHaveLength(3);
    expect(rejected[0]).toMatch(
      /Telemetry istio-system\/tracing.*spec\.tracing\[0\]\.customTags\.t.*exactly one of/,
    );
    expect(rejected[1]).toMatch(/spec\.tracing\[0\]\.randomSamplingPercentage/);
    expect(rejected[2]).toMatch(/spec\.selector: selector and targetRefs are exclusive/);
  });

  it('warns that metrics are not enforced', () => {
    const t = telemetry({ metrics: [{ providers: [{ name: 'prometheus' }] }] }) as unknown as Telemetry;
    expect(telemetryWarnings(t)).toEqual([expect.stringMatching(/^spec\.metrics: not enforced/)]);
    expect(telemetryWarnings(telemetry({}) as unknown as Telemetry)).toEqual([]);
  });
});

describe('mesh config opentelemetry providers', () => {
  const mesh = `extensionProviders:
- name: otel-grpc
  opentelemetry: {service: opentelemetry-collector.observability.svc.cluster.local, port: 4317}
- name: otel-http
  opentelemetry:
    service: 127.0.0.1
    port: 4318
    maxTagLength: 64
    http: {path: /v1/traces, timeout: 3s, headers: [{name: X-Token, value: abc}]}
- name: authz
  envoyExtAuthzGrpc: {service: 127.0.0.1, port: 9000}
`;

  it('reads gRPC and HTTP providers, and authz still reads its own from the same file', () => {
    expect(parseTracingProviders(mesh)).toEqual([
      {
        name: 'otel-grpc',
        service: 'opentelemetry-collector.observability.svc.cluster.local',
        port: 4317,
        maxTagLength: 256,
      },
      {
        name: 'otel-http',
        service: '127.0.0.1',
        port: 4318,
        maxTagLength: 64,
        http: { path: '/v1/traces', timeoutMs: 3000, headers: { 'x-token': 'abc' } },
      },
    ]);
    expect(parseMeshConfig(mesh).map((p) => [p.name, p.kind])).toEqual([['authz', 'grpc']]);
  });

  it('names the provider and field of a bad entry, and reads the istio ConfigMap', () => {
    expect(() =>
      parseTracingProviders('extensionProviders: [{name: o, opentelemetry: {service: x, port: 1}}]'),
    ).toThrow(/extensionProviders\[0\] \(o\)\.opentelemetry\.service: expected an IP or a Service FQDN/);
    expect(() =>
      parseTracingProviders(
        'extensionProviders: [{name: o, opentelemetry: {service: 127.0.0.1, port: 1, http: {path: v1}}}]',
      ),
    ).toThrow(/opentelemetry\.http\.path: must start with \//);
    expect(() =>
      parseTracingProviders('extensionProviders: [{name: o, opentelemetry: {}}, {name: o, zipkin: {}}]'),
    ).toThrow(/duplicate provider name "o"/);
    const cm = `kind: ConfigMap\ndata:\n  mesh: |\n    extensionProviders: [{name: o, opentelemetry: {service: 127.0.0.1, port: 4317}}]\n`;
    expect(parseTracingProviders(cm).map((p) => p.name)).toEqual(['o']);
  });
});
