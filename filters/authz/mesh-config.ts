// Istio MeshConfig, the part this waypoint reads: `extensionProviders[]` of kinds
// `envoyExtAuthzGrpc` and `envoyExtAuthzHttp` (istio/api mesh/v1alpha1/config.proto
// MeshConfig.ExtensionProvider). The file is the MeshConfig YAML itself or the `istio` ConfigMap
// whose `data.mesh` holds it. Everything else in it is ignored. Problems throw MeshConfigError with
// the provider and field named.
import { readFile } from 'node:fs/promises';
import {
  isObj,
  MeshConfigError,
  type Obj,
  ProviderFields,
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
  const kindKey = ['envoyExtAuthzGrpc', 'envoyExtAuthzHttp'].find((k) => k in entry);
  if (!kindKey) return undefined; // another kind (tracing, access log, ...): not ours
  const where = `extensionProviders[${i}] (${name}).${kindKey}`;
  const spec = entry[kindKey];
  if (!isObj(spec)) throw new MeshConfigError(`${where}: expected a mapping`);
  const f = new ProviderFields(spec, where);
  const base: ProviderBase = {
    name,
    service: f.service(),
    port: f.port(),
    timeoutMs: f.duration('timeout', DEFAULT_TIMEOUT_MS),
    failOpen: f.bool('failOpen'),
    statusOnError: statusOnError(f),
    includeRequestBodyInCheck: bodyCheck(f),
  };
  return kindKey === 'envoyExtAuthzGrpc'
    ? { kind: 'grpc', ...base }
    : { kind: 'http', ...base, ...httpOptions(f) };
}

function statusOnError(f: ProviderFields): number {
  const soe = f.str('statusOnError');
  if (soe === undefined) return 403;
  const n = Number(soe);
  if (!/^\d{3}$/.test(soe) || n < 100 || n > 599)
    f.fail('statusOnError', `expected an HTTP status such as "503", got ${JSON.stringify(soe)}`);
  return n;
}

function bodyCheck(f: ProviderFields): ProviderBase['includeRequestBodyInCheck'] {
  const field = 'includeRequestBodyInCheck';
  const body = f.spec[field];
  if (body === undefined || body === null) return undefined;
  if (!isObj(body)) return f.fail(field, 'expected a mapping');
  const max = body.maxRequestBytes ?? 0;
  if (typeof max !== 'number' || !Number.isInteger(max) || max < 0)
    f.fail(`${field}.maxRequestBytes`, `expected a byte count, got ${JSON.stringify(max)}`);
  return {
    maxRequestBytes: max as number,
    allowPartialMessage: f.bool(`${field}.allowPartialMessage`, body, 'allowPartialMessage'),
    packAsBytes: f.bool(`${field}.packAsBytes`, body, 'packAsBytes'),
  };
}

/** What only envoyExtAuthzHttp has: the path prefix and which headers go where. */
function httpOptions(f: ProviderFields): Omit<HttpProvider, keyof ProviderBase | 'kind'> {
  const pathPrefix = f.str('pathPrefix') ?? '';
  if (pathPrefix !== '' && !pathPrefix.startsWith('/'))
    f.fail('pathPrefix', `must start with /, got ${JSON.stringify(pathPrefix)}`);
  const additional = f.spec.includeAdditionalHeadersInCheck ?? {};
  if (!isObj(additional) || Object.values(additional).some((v) => typeof v !== 'string'))
    f.fail('includeAdditionalHeadersInCheck', 'expected a mapping of header name to value');
  const pat = (field: string): HeaderPattern | undefined => {
    const l = patterns(f, field);
    return l ? headerPattern(l) : undefined;
  };
  // includeHeadersInCheck is the deprecated name of includeRequestHeadersInCheck.
  const deprecated = pat('includeHeadersInCheck');
  return {
    pathPrefix,
    includeRequestHeadersInCheck: pat('includeRequestHeadersInCheck') ?? deprecated,
    includeAdditionalHeadersInCheck: Object.fromEntries(
      Object.entries(additional as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]),
    ),
    headersToUpstreamOnAllow: pat('headersToUpstreamOnAllow'),
    headersToDownstreamOnDeny: pat('headersToDownstreamOnDeny'),
    headersToDownstreamOnAllow: pat('headersToDownstreamOnAllow'),
  };
}

function patterns(f: ProviderFields, field: string): readonly string[] | undefined {
  const v = f.spec[field];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x === ''))
    f.fail(field, 'expected a list of header names or patterns');
  return v as string[];
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
