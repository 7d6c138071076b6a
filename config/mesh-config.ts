// Istio MeshConfig as a document: the YAML itself or the `istio` ConfigMap whose `data.mesh` holds
// it, and its `extensionProviders[]` (istio/api mesh/v1alpha1/config.proto). Each consumer parses
// the provider kinds it owns (ext_authz in filters/authz, opentelemetry here for tracing); names
// are unique across all kinds. Problems throw MeshConfigError naming the provider and field.
import { isIP } from 'node:net';
import { parse } from 'yaml';

export class MeshConfigError extends Error {
  override name = 'MeshConfigError';
}

export type Obj = Record<string, unknown>;

export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** One `extensionProviders[i]` entry: its name, kind key (e.g. `opentelemetry`) and that kind's spec. */
export interface ProviderEntry {
  readonly index: number;
  readonly name: string;
  readonly kindKey: string | undefined;
  readonly spec: unknown;
  /** The whole entry, for kinds that look up their own key. */
  readonly entry: Obj;
}

/** The MeshConfig mapping (unwrapping the ConfigMap); `{}` for an empty document. */
export function readMeshDocument(text: string): Obj {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new MeshConfigError(`not valid YAML: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (!isObj(doc)) throw new MeshConfigError('expected a MeshConfig mapping');
  if (doc.kind !== 'ConfigMap') return doc;
  const mesh = isObj(doc.data) ? doc.data.mesh : undefined;
  if (typeof mesh !== 'string')
    throw new MeshConfigError('ConfigMap: data.mesh (the MeshConfig YAML) is missing');
  return readMeshDocument(mesh);
}

/** The extensionProviders entries, each named and of at most one kind; duplicate names rejected. */
export function providerEntries(doc: Obj): ProviderEntry[] {
  const list = doc.extensionProviders;
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new MeshConfigError('extensionProviders: expected a list');
  const seen = new Set<string>();
  return list.map((entry, index) => {
    const at = `extensionProviders[${index}]`;
    if (!isObj(entry)) throw new MeshConfigError(`${at}: expected a mapping`);
    const name = entry.name;
    if (typeof name !== 'string' || name === '') throw new MeshConfigError(`${at}.name: required`);
    if (seen.has(name)) throw new MeshConfigError(`${at}: duplicate provider name ${JSON.stringify(name)}`);
    seen.add(name);
    const kindKey = Object.keys(entry).find((k) => k !== 'name');
    return { index, name, kindKey, spec: kindKey ? entry[kindKey] : undefined, entry };
  });
}

/** `name.namespace.svc.<domain>` Service FQDN or an IP (optionally `ns/` prefixed, as Istio allows). */
export function isProviderService(service: string): boolean {
  const host = service.includes('/') ? service.slice(service.indexOf('/') + 1) : service;
  return (
    isIP(host) !== 0 || /^[a-z0-9]([-a-z0-9]*[a-z0-9])?\.[a-z0-9]([-a-z0-9]*[a-z0-9])?\.svc\./.test(host)
  );
}

/** `5s`, `0.5s`, `300ms`, `1m`, `1h` (protobuf Duration as YAML writes it) → milliseconds. */
export function parseDurationMs(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim());
  if (!m) return undefined;
  const unit = m[2] === 'ms' ? 1 : m[2] === 's' ? 1_000 : m[2] === 'm' ? 60_000 : 3_600_000;
  return Number(m[1]) * unit;
}

/**
 * Reads the fields of one provider's spec; a bad value throws MeshConfigError naming
 * `<where>.<field>`. Absent means undefined or null.
 */
export class ProviderFields {
  readonly spec: Obj;
  readonly #where: string;

  constructor(spec: Obj, where: string) {
    this.spec = spec;
    this.#where = where;
  }

  fail(field: string, text: string): never {
    throw new MeshConfigError(`${this.#where}.${field}: ${text}`);
  }

  str(field: string): string | undefined {
    const v = this.spec[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') this.fail(field, `expected a string, got ${JSON.stringify(v)}`);
    return v as string;
  }

  /** `obj` is the spec or a mapping inside it at `field`'s parent path. */
  bool(field: string, obj: Obj = this.spec, key = field): boolean {
    const v = obj[key] ?? false;
    if (typeof v !== 'boolean') this.fail(field, `expected true or false, got ${JSON.stringify(v)}`);
    return v as boolean;
  }

  /** The provider's Service: required, an IP or a Service FQDN. */
  service(): string {
    const service = this.str('service');
    if (!service) return this.fail('service', 'required');
    if (!isProviderService(service))
      this.fail(
        'service',
        `expected an IP or a Service FQDN (name.namespace.svc.cluster.local), got ${JSON.stringify(service)}`,
      );
    return service;
  }

  port(): number {
    const port = this.spec.port;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)
      this.fail('port', `expected a port 1-65535, got ${JSON.stringify(port)}`);
    return port as number;
  }

  /** A positive duration in milliseconds; `fallback` when absent. */
  duration(field: string, fallback: number, value: unknown = this.spec[field]): number {
    if (value === undefined || value === null) return fallback;
    const ms = typeof value === 'string' ? parseDurationMs(value) : undefined;
    if (ms === undefined || ms <= 0)
      this.fail(field, `expected a duration such as 0.5s or 2s, got ${JSON.stringify(value)}`);
    return ms as number;
  }
}
