// Istio MeshConfig, the part this waypoint reads: `extensionProviders[]` of kinds
// `envoyExtAuthzGrpc` and `envoyExtAuthzHttp` (istio/api mesh/v1alpha1/config.proto
// MeshConfig.ExtensionProvider). The file is the MeshConfig YAML itself or the `istio` ConfigMap
// whose `data.mesh` holds it. Everything else in it is ignored. Problems throw MeshConfigError with
// the provider and field named.
import { readFile } from 'node:fs/promises';
import {
  isObj,
  isProviderService,
  MeshConfigError,
  type Obj,
  parseDurationMs,
  providerEntries,
  readMeshDocument,
} from '../../config/mesh-config.ts';

export { MeshConfigError, parseDurationMs };

/** A header-name pattern as Istio writes it: exact, `x*` prefix, `*x` suffix (case-insensitive). */
export type HeaderPattern = (name: string) => boolean;

interface ProviderBase {
  readonly name: string;
  /** `name.namespace.svc.<domain>` Service FQDN, or an IP (optionally `ns/` prefixed, as Istio allows). */
  readonly service: string;
  readonly port: number;
  readonly timeoutMs: number;
  readonly failOpen: boolean;
  /** Status returned when the provider cannot be reached or fails (default 403). */
  readonly statusOnError: number;
  readonly includeRequestBodyInCheck:
    | {
        readonly maxRequestBytes: number;
        readonly allowPartialMessage: boolean;
        /** gRPC: the body goes as `raw_body` bytes instead of the `body` string. */
        readonly packAsBytes: boolean;
      }
    | undefined;
}

export interface GrpcProvider extends ProviderBase {
  readonly kind: 'grpc';
}

export interface HttpProvider extends ProviderBase {
  readonly kind: 'http';
  readonly pathPrefix: string;
  /** Undefined: every request header is sent (Envoy's default when no list is configured). */
  readonly includeRequestHeadersInCheck: HeaderPattern | undefined;
  readonly includeAdditionalHeadersInCheck: Readonly<Record<string, string>>;
  /** Undefined: none (no header from the provider goes upstream). */
  readonly headersToUpstreamOnAllow: HeaderPattern | undefined;
  /** Undefined: every header of the provider's response except Host. */
  readonly headersToDownstreamOnDeny: HeaderPattern | undefined;
  /** Undefined: none. */
  readonly headersToDownstreamOnAllow: HeaderPattern | undefined;
}

export type ExtensionProvider = GrpcProvider | HttpProvider;

/** Istio's default ext_authz timeout: 10 minutes. */
export const DEFAULT_TIMEOUT_MS = 600_000;

export function headerPattern(patterns: readonly string[]): HeaderPattern {
  const tests = patterns.map((raw) => {
    const p = raw.toLowerCase();
    if (p.length > 1 && p.endsWith('*')) {
      const pre = p.slice(0, -1);
      return (n: string) => n.startsWith(pre);
    }
    if (p.length > 1 && p.startsWith('*')) {
      const suf = p.slice(1);
      return (n: string) => n.endsWith(suf);
    }
    if (p === '*') return (n: string) => n.length > 0;
    return (n: string) => n === p;
  });
  return (name) => {
    const n = name.toLowerCase();
    return tests.some((t) => t(n));
  };
}

function providerOf(entry: Obj, i: number, name: string): ExtensionProvider | undefined {
  const at = `extensionProviders[${i}]`;
  const kindKey = ['envoyExtAuthzGrpc', 'envoyExtAuthzHttp'].find((k) => k in entry);
  if (!kindKey) return undefined; // another kind (tracing, access log, ...): not ours
  const where = `${at} (${name}).${kindKey}`;
  const spec = entry[kindKey];
  if (!isObj(spec)) throw new MeshConfigError(`${where}: expected a mapping`);
  const fail = (field: string, text: string): never => {
    throw new MeshConfigError(`${where}.${field}: ${text}`);
  };
  const str = (field: string): string | undefined => {
    const v = spec[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') fail(field, `expected a string, got ${JSON.stringify(v)}`);
    return v as string;
  };
  const bool = (field: string): boolean => {
    const v = spec[field];
    if (v === undefined || v === null) return false;
    if (typeof v !== 'boolean') fail(field, `expected true or false, got ${JSON.stringify(v)}`);
    return v as boolean;
  };
  const list = (field: string): readonly string[] | undefined => {
    const v = spec[field];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x === ''))
      fail(field, 'expected a list of header names or patterns');
    return v as string[];
  };

  const service = str('service');
  if (!service) return fail('service', 'required');
  if (!isProviderService(service))
    fail(
      'service',
      `expected an IP or a Service FQDN (name.namespace.svc.cluster.local), got ${JSON.stringify(service)}`,
    );
  const port = spec.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)
    fail('port', `expected a port 1-65535, got ${JSON.stringify(port)}`);
  let timeoutMs = DEFAULT_TIMEOUT_MS;
  const timeout = str('timeout');
  if (timeout !== undefined) {
    const ms = parseDurationMs(timeout);
    if (ms === undefined || ms <= 0)
      fail('timeout', `expected a duration such as 0.5s or 2s, got ${JSON.stringify(timeout)}`);
    timeoutMs = ms as number;
  }
  let statusOnError = 403;
  const soe = str('statusOnError');
  if (soe !== undefined) {
    const n = Number(soe);
    if (!/^\d{3}$/.test(soe) || n < 100 || n > 599)
      fail('statusOnError', `expected an HTTP status such as "503", got ${JSON.stringify(soe)}`);
    statusOnError = n;
  }
  let includeRequestBodyInCheck: ProviderBase['includeRequestBodyInCheck'];
  const body = spec.includeRequestBodyInCheck;
  if (body !== undefined && body !== null) {
    if (!isObj(body)) fail('includeRequestBodyInCheck', 'expected a mapping');
    const b = body as Obj;
    const max = b.maxRequestBytes ?? 0;
    if (typeof max !== 'number' || !Number.isInteger(max) || max < 0)
      fail('includeRequestBodyInCheck.maxRequestBytes', `expected a byte count, got ${JSON.stringify(max)}`);
    const partial = b.allowPartialMessage ?? false;
    if (typeof partial !== 'boolean')
      fail(
        'includeRequestBodyInCheck.allowPartialMessage',
        `expected true or false, got ${JSON.stringify(partial)}`,
      );
    const bytes = b.packAsBytes ?? false;
    if (typeof bytes !== 'boolean')
      fail('includeRequestBodyInCheck.packAsBytes', `expected true or false, got ${JSON.stringify(bytes)}`);
    includeRequestBodyInCheck = {
      maxRequestBytes: max as number,
      allowPartialMessage: partial as boolean,
      packAsBytes: bytes as boolean,
    };
  }
  const base = {
    name,
    service,
    port: port as number,
    timeoutMs,
    failOpen: bool('failOpen'),
    statusOnError,
    includeRequestBodyInCheck,
  };
  if (kindKey === 'envoyExtAuthzGrpc') return { kind: 'grpc', ...base };

  const pathPrefix = str('pathPrefix') ?? '';
  if (pathPrefix !== '' && !pathPrefix.startsWith('/'))
    fail('pathPrefix', `must start with /, got ${JSON.stringify(pathPrefix)}`);
  const additional = spec.includeAdditionalHeadersInCheck ?? {};
  if (!isObj(additional) || Object.values(additional).some((v) => typeof v !== 'string'))
    fail('includeAdditionalHeadersInCheck', 'expected a mapping of header name to value');
  const pat = (field: string): HeaderPattern | undefined => {
    const l = list(field);
    return l ? headerPattern(l) : undefined;
  };
  const deprecated = list('includeHeadersInCheck');
  return {
    kind: 'http',
    ...base,
    pathPrefix,
    includeRequestHeadersInCheck:
      pat('includeRequestHeadersInCheck') ?? (deprecated ? headerPattern(deprecated) : undefined),
    includeAdditionalHeadersInCheck: Object.fromEntries(
      Object.entries(additional as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]),
    ),
    headersToUpstreamOnAllow: pat('headersToUpstreamOnAllow'),
    headersToDownstreamOnDeny: pat('headersToDownstreamOnDeny'),
    headersToDownstreamOnAllow: pat('headersToDownstreamOnAllow'),
  };
}

/** Parses MeshConfig YAML (or the `istio` ConfigMap holding it in `data.mesh`): its ext_authz providers. */
export function parseMeshConfig(text: string): ExtensionProvider[] {
  const out: ExtensionProvider[] = [];
  for (const e of providerEntries(readMeshDocument(text))) {
    const p = providerOf(e.entry, e.index, e.name);
    if (p) out.push(p);
  }
  return out;
}

export async function loadMeshConfig(path: string): Promise<ExtensionProvider[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new MeshConfigError(`${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return parseMeshConfig(text);
  } catch (err) {
    if (err instanceof MeshConfigError) throw new MeshConfigError(`${path}: ${err.message}`);
    throw err;
  }
}
