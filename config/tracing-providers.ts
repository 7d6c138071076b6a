// The mesh config's `opentelemetry` extension providers (MeshConfig.ExtensionProvider
// .OpenTelemetryTracingProvider): where the waypoint exports spans over OTLP, gRPC unless `http`
// is set. A Telemetry resource selects one by name.
import {
  isObj,
  MeshConfigError,
  type Obj,
  ProviderFields,
  providerEntries,
  readMeshDocument,
} from './mesh-config.ts';

export interface OtlpProvider {
  readonly name: string;
  readonly service: string;
  readonly port: number;
  /** Present: OTLP/HTTP to `path`; absent: OTLP/gRPC. */
  readonly http?: {
    readonly path: string;
    readonly timeoutMs: number;
    readonly headers: Readonly<Record<string, string>>;
  };
  /** Istio's maxTagLength (default 256). */
  readonly maxTagLength: number;
}

function httpOf(f: ProviderFields): OtlpProvider['http'] {
  const v = f.spec.http;
  if (!isObj(v)) return f.fail('http', 'expected a mapping');
  const path = v.path ?? '/v1/traces';
  if (typeof path !== 'string' || !path.startsWith('/'))
    f.fail('http.path', `must start with /, got ${JSON.stringify(path)}`);
  const headers: Record<string, string> = {};
  const list = v.headers ?? [];
  if (!Array.isArray(list)) f.fail('http.headers', 'expected a list of {name, value}');
  for (const [i, h] of (list as unknown[]).entries()) {
    if (!isObj(h) || typeof h.name !== 'string' || h.name === '' || typeof h.value !== 'string')
      f.fail(`http.headers[${i}]`, 'expected {name, value} strings (envoyHeaders secrets are not supported)');
    headers[((h as Obj).name as string).toLowerCase()] = (h as Obj).value as string;
  }
  return { path: path as string, timeoutMs: f.duration('http.timeout', 10_000, v.timeout), headers };
}

function otlpProviderOf(name: string, at: string, spec: unknown): OtlpProvider {
  const where = `${at} (${name}).opentelemetry`;
  if (!isObj(spec)) throw new MeshConfigError(`${where}: expected a mapping`);
  const f = new ProviderFields(spec, where);
  const service = f.service();
  const port = f.port();
  const max = spec.maxTagLength ?? 256;
  if (typeof max !== 'number' || !Number.isInteger(max) || max < 1)
    f.fail('maxTagLength', `expected a positive integer, got ${JSON.stringify(max)}`);
  const http = spec.http == null ? undefined : httpOf(f);
  return { name, service, port, maxTagLength: max as number, ...(http ? { http } : {}) };
}

/** The opentelemetry providers of a MeshConfig YAML (or the `istio` ConfigMap holding it). */
export function parseTracingProviders(text: string): OtlpProvider[] {
  return providerEntries(readMeshDocument(text))
    .filter((e) => e.kindKey === 'opentelemetry')
    .map((e) => otlpProviderOf(e.name, `extensionProviders[${e.index}]`, e.spec));
}
