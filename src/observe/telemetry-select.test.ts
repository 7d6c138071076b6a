// Which Telemetry applies to the waypoint and what settings come of it: Istio's layering (root
// namespace, waypoint namespace, resource selecting the waypoint), and OTEL_* as the fallback.
import { describe, expect, it } from 'vitest';
import type { Resource } from '../../config/resource.ts';
import { selectTracing } from './telemetry-select.ts';
import { envSamplingPercent, tracingSettings } from './tracing-exporter.ts';

const gateway = { namespace: 'shop', name: 'waypoint' };
const telemetry = (namespace: string, name: string, spec: unknown): Resource =>
  ({
    kind: 'Telemetry',
    group: 'telemetry.istio.io',
    version: 'v1',
    namespace,
    name,
    origin: { file: 't.yaml', index: 0 },
    spec: { metadata: { name, namespace }, spec },
  }) as unknown as Resource;

describe('selectTracing', () => {
  it('layers root default, namespace, then the resource targeting the waypoint', () => {
    const resources = [
      telemetry('istio-system', 'mesh', {
        tracing: [
          {
            providers: [{ name: 'otel' }],
            randomSamplingPercentage: 5,
            customTags: { a: { literal: { value: 'x' } } },
          },
        ],
      }),
      telemetry('shop', 'ns', { tracing: [{ randomSamplingPercentage: 20 }] }),
      telemetry('shop', 'wp', {
        targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }],
        tracing: [{ randomSamplingPercentage: 50 }],
      }),
      telemetry('shop', 'other', {
        targetRefs: [{ kind: 'Gateway', name: 'elsewhere' }],
        tracing: [{ randomSamplingPercentage: 99 }],
      }),
      telemetry('bank', 'ns', { tracing: [{ randomSamplingPercentage: 77 }] }),
    ];
    expect(selectTracing(resources, gateway, 'istio-system')).toEqual({
      provider: 'otel',
      samplingPercent: 50,
      disableSpanReporting: undefined,
      customTags: { a: { literal: 'x' } },
    });
    expect(selectTracing(resources.slice(0, 2), gateway, 'istio-system').samplingPercent).toBe(20);
    expect(selectTracing(resources.slice(0, 1), gateway, 'istio-system').samplingPercent).toBe(5);
  });

  it('a selector matching the gateway-name label selects the waypoint; another does not', () => {
    const sel = (v: string) =>
      telemetry('shop', v, {
        selector: { matchLabels: { 'gateway.networking.k8s.io/gateway-name': v } },
        tracing: [{ randomSamplingPercentage: 42 }],
      });
    expect(selectTracing([sel('waypoint')], gateway, 'istio-system').samplingPercent).toBe(42);
    expect(selectTracing([sel('other')], gateway, 'istio-system').samplingPercent).toBeUndefined();
  });
});

describe('tracingSettings', () => {
  const providers = [{ name: 'otel', service: '127.0.0.1', port: 4317, maxTagLength: 64 }];

  it('the named provider, Telemetry percentage over OTEL_TRACES_SAMPLER over 1%', () => {
    expect(
      tracingSettings({ provider: 'otel', samplingPercent: 30 }, providers, {
        OTEL_TRACES_SAMPLER: 'always_on',
      }).settings,
    ).toMatchObject({ samplingPercent: 30, maxTagLength: 64 });
    expect(
      tracingSettings({ provider: 'otel' }, providers, { OTEL_TRACES_SAMPLER: 'always_on' }).settings
        .samplingPercent,
    ).toBe(100);
    expect(tracingSettings({ provider: 'otel' }, providers, {}).settings.samplingPercent).toBe(1);
  });

  it('no provider and no OTEL endpoint: off; an unknown provider name is reported; disableSpanReporting turns it off', () => {
    expect(tracingSettings({}, providers, {}).settings.exporter).toBeUndefined();
    const unknown = tracingSettings({ provider: 'zipkin' }, providers, {});
    expect(unknown.settings.exporter).toBeUndefined();
    expect(unknown.problem).toMatch(/"zipkin"/);
    expect(
      tracingSettings({ provider: 'otel', disableSpanReporting: true }, providers, {}).settings.exporter,
    ).toBeUndefined();
    expect(
      tracingSettings({}, [], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }).settings.exporter,
    ).toBeDefined();
    expect(
      tracingSettings({}, [], {
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
        OTEL_TRACES_EXPORTER: 'none',
      }).settings.exporter,
    ).toBeUndefined();
  });

  it('reads OTEL_TRACES_SAMPLER and its ratio', () => {
    expect(
      envSamplingPercent({
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0.25',
      }),
    ).toBe(25);
    expect(envSamplingPercent({ OTEL_TRACES_SAMPLER: 'always_off' })).toBe(0);
    expect(envSamplingPercent({})).toBeUndefined();
  });
});
