// Where spans go and how many: the mesh config's opentelemetry provider a Telemetry names (OTLP
// over gRPC, or HTTP when it has `http`), else the standard OTEL_* variables
// (OTEL_EXPORTER_OTLP[_TRACES]_ENDPOINT and _PROTOCOL, OTEL_TRACES_SAMPLER[_ARG],
// OTEL_TRACES_EXPORTER=none). Neither: tracing off.
import { createRequire } from 'node:module';
import type * as OtlpGrpc from '@opentelemetry/exporter-trace-otlp-grpc';
import type * as OtlpProto from '@opentelemetry/exporter-trace-otlp-proto';
import type { SpanExporter } from '@opentelemetry/sdk-trace';
import type { OtlpProvider } from '../../config/tracing-providers.ts';
import type { TracingPolicy } from './telemetry-select.ts';
import type { TracingSettings } from './tracing.ts';

type Env = Readonly<Record<string, string | undefined>>;

// The exporters are loaded when one is configured: together they weigh about 25 MB of RSS that a
// waypoint without tracing should not carry.
const load = createRequire(import.meta.url);
const GrpcExporter = (...args: ConstructorParameters<typeof OtlpGrpc.OTLPTraceExporter>) =>
  new (load('@opentelemetry/exporter-trace-otlp-grpc') as typeof OtlpGrpc).OTLPTraceExporter(...args);
const HttpExporter = (...args: ConstructorParameters<typeof OtlpProto.OTLPTraceExporter>) =>
  new (load('@opentelemetry/exporter-trace-otlp-proto') as typeof OtlpProto).OTLPTraceExporter(...args);

/** An OTLP exporter for a mesh config provider (`ns/` prefix of the service dropped). */
export function providerExporter(p: OtlpProvider): SpanExporter {
  const host = p.service.includes('/') ? p.service.slice(p.service.indexOf('/') + 1) : p.service;
  const authority = host.includes(':') ? `[${host}]:${p.port}` : `${host}:${p.port}`;
  if (!p.http) return GrpcExporter({ url: `http://${authority}` });
  return HttpExporter({
    url: `http://${authority}${p.http.path}`,
    headers: { ...p.http.headers },
    timeoutMillis: p.http.timeoutMs,
  });
}

/** The exporter OTEL_* names, or undefined when no endpoint is set (or OTEL_TRACES_EXPORTER=none). */
export function envExporter(env: Env): SpanExporter | undefined {
  if (env.OTEL_SDK_DISABLED === 'true' || env.OTEL_TRACES_EXPORTER === 'none') return undefined;
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!traces && !base) return undefined;
  const protocol =
    env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf';
  if (protocol === 'grpc') return GrpcExporter({ url: traces ?? base });
  return HttpExporter({ url: traces ?? `${base?.replace(/\/$/, '')}/v1/traces` });
}

/** OTEL_TRACES_SAMPLER(_ARG) as a percentage for requests without a decision; undefined: not set. */
export function envSamplingPercent(env: Env): number | undefined {
  const sampler = env.OTEL_TRACES_SAMPLER;
  if (!sampler) return undefined;
  if (sampler === 'always_on' || sampler === 'parentbased_always_on') return 100;
  if (sampler === 'always_off' || sampler === 'parentbased_always_off') return 0;
  if (sampler === 'traceidratio' || sampler === 'parentbased_traceidratio') {
    const ratio = Number(env.OTEL_TRACES_SAMPLER_ARG ?? '1');
    return Number.isFinite(ratio) && ratio >= 0 && ratio <= 1 ? ratio * 100 : 100;
  }
  return undefined;
}

/**
 * The settings for a Telemetry policy: its provider when the mesh config has it, else OTEL_*;
 * Telemetry's percentage over OTEL_TRACES_SAMPLER over Istio's 1%. `disableSpanReporting`: off.
 */
export function tracingSettings(
  policy: TracingPolicy,
  providers: readonly OtlpProvider[],
  env: Env,
): { settings: TracingSettings; problem?: string } {
  if (policy.disableSpanReporting) return { settings: {} };
  const provider = policy.provider ? providers.find((p) => p.name === policy.provider) : undefined;
  const exporter = provider ? providerExporter(provider) : envExporter(env);
  const problem =
    policy.provider && !provider
      ? `Telemetry names tracing provider ${JSON.stringify(policy.provider)}, not an opentelemetry provider of the mesh config`
      : undefined;
  if (!exporter) return { settings: {}, ...(problem ? { problem } : {}) };
  return {
    settings: {
      exporter,
      samplingPercent: policy.samplingPercent ?? envSamplingPercent(env) ?? 1,
      ...(policy.customTags ? { customTags: policy.customTags } : {}),
      ...(provider ? { maxTagLength: provider.maxTagLength } : {}),
    },
    ...(problem ? { problem } : {}),
  };
}
