// A validated Kubernetes object as the store holds it and the compiler reads it. The store keeps one
// per key; `spec` is the schema's output for the whole document (metadata, spec and status alike).
import type { Origin } from './model.ts';

export interface Resource<T = unknown> {
  readonly kind: string;
  /** API group; `''` for the core group. */
  readonly group: string;
  readonly version: string;
  /** `''` for cluster-scoped kinds. */
  readonly namespace: string;
  readonly name: string;
  readonly origin: Origin;
  /** The validated document, deep-frozen. */
  readonly spec: T;
}

export function resourceKey(r: Pick<Resource, 'group' | 'kind' | 'namespace' | 'name'>): string {
  return `${r.group}/${r.kind}/${r.namespace}/${r.name}`;
}

/** `apiVersion` split the Kubernetes way: `v1` is the core group, `g/v` otherwise. */
export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.lastIndexOf('/');
  return slash < 0
    ? { group: '', version: apiVersion }
    : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/**
 * The resources of one kind. The cast is sound because the store validated each resource with the
 * schema registered for its group and kind.
 */
export function resourcesOf<T>(resources: readonly Resource[], group: string, kind: string): Resource<T>[] {
  return resources.filter((r) => r.group === group && r.kind === kind) as Resource<T>[];
}

/** `Service bank/frontend`, or `Namespace bank` for cluster-scoped kinds. */
export function describe(r: Pick<Resource, 'kind' | 'namespace' | 'name'>): string {
  return r.namespace ? `${r.kind} ${r.namespace}/${r.name}` : `${r.kind} ${r.name}`;
}
