// The mesh config's `opentelemetry` extension providers (MeshConfig.ExtensionProvider
// .OpenTelemetryTracingProvider): where the waypoint exports spans over OTLP, gRPC unless `http`
// is set. A Telemetry resource selects one by name.
import {
  isObj,
  isProviderService,
  MeshConfigError,
  type Obj,
  parseDurationMs,
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

function httpOf(v: unknown, fail: (field: string, text: string) => never): OtlpProvider['http'] {
  if (!isObj(v)) return fail('http', 'expected a mapping');
  const path = v.path ?? '/v1/traces';
  if (typeof path !== 'string' || !path.startsWith('/'))
    fail('http.path', `must start with /, got ${JSON.stringify(path)}`);
  let timeoutMs = 10_000;
  if (v.timeout != null) {
    const ms = typeof v.timeout === 'string' ? parseDurationMs(v.timeout) : undefined;
    if (ms === undefined || ms <= 0)
      fail('http.timeout', `expected a duration such as 2s, got ${JSON.stringify(v.timeout)}`);
    timeoutMs = ms as number;
  }
  const headers: Record<string, string> = {};
  const list = v.headers ?? [];
  if (!Array.isArray(list)) fail('http.headers', 'expected a list of {name, value}');
  for (const [i, h] of (list as unknown[]).entries()) {
    if (!isObj(h) || typeof h.name !== 'string' || h.name === '' || typeof h.value !== 'string')
      fail(`http.headers[${i}]`, 'expected {name, value} strings (envoyHeaders secrets are not supported)');
    headers[((h as Obj).name as string).toLowerCase()] = (h as Obj).value as string;
  }
  return { path: path as string, timeoutMs, headers };
}

function otlpProviderOf(name: string, at: string, spec: unknown): OtlpProvider {
  const where = `${at} (${name}).opentelemetry`;
  const fail = (field: string, text: string): never => {
    throw new MeshConfigError(`${where}.${field}: ${text}`);
  };
  if (!isObj(spec)) return fail('', 'expected a mapping');
  const service = spec.service;
  if (typeof service !== 'string' || !isProviderService(service))
    fail(
      'service',
      `expected an IP or a Service FQDN (name.namespace.svc.cluster.local), got ${JSON.stringify(service)}`,
    );
  const port = spec.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)
    fail('port', `expected a port 1-65535, got ${JSON.stringify(port)}`);
  const max = spec.maxTagLength ?? 256;
  if (typeof max !== 'number' || !Number.isInteger(max) || max < 1)
    fail('maxTagLength', `expected a positive integer, got ${JSON.stringify(max)}`);
  const http = spec.http == null ? undefined : httpOf(spec.http, fail);
  return {
    name,
    service: service as string,
    port: port as number,
    maxTagLength: max as number,
    ...(http ? { http } : {}),
  };
}

/** The opentelemetry providers of a MeshConfig YAML (or the `istio` ConfigMap holding it). */
export function parseTracingProviders(text: string): OtlpProvider[] {
  return providerEntries(readMeshDocument(text))
    .filter((e) => e.kindKey === 'opentelemetry')
    .map((e) => otlpProviderOf(e.name, `extensionProviders[${e.index}]`, e.spec));
}
