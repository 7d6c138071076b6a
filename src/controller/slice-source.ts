// The seam between the controller's Kubernetes side (reflectors, binding) and its config stream
// (gRPC to each waypoint): what one waypoint Gateway must see, as plain Kubernetes documents.

/** One Kubernetes object as the waypoint's store reads it: plain JSON, trimmed to what it needs. */
export interface KubeDocument {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly resourceVersion?: string;
    readonly [field: string]: unknown;
  };
  readonly [field: string]: unknown;
}

/** `group/kind/namespace/name`: `''` group for core kinds, `''` namespace for cluster-scoped ones. */
export type DocumentKey = string;

export function documentKey(doc: KubeDocument): DocumentKey {
  const slash = doc.apiVersion.lastIndexOf('/');
  const group = slash < 0 ? '' : doc.apiVersion.slice(0, slash);
  return `${group}/${doc.kind}/${doc.metadata.namespace ?? ''}/${doc.metadata.name}`;
}

/** Everything one waypoint Gateway needs, at one version. */
export interface Slice {
  /** Changes whenever any document of the slice changes; opaque to the stream. */
  readonly version: string;
  readonly documents: ReadonlyMap<DocumentKey, KubeDocument>;
}

export interface SliceSource {
  /** True once every watched kind has had its first full list. */
  readonly synced: boolean;
  /**
   * The waypoint Gateways (`namespace/name`) a workload of this identity may serve: those whose
   * ServiceAccount it is (istiod names a waypoint's ServiceAccount after its Gateway).
   */
  gatewaysFor(namespace: string, serviceAccount: string): readonly string[];
  /** The slice of one Gateway (`namespace/name`) now, or undefined before the first sync. */
  slice(gateway: string): Slice | undefined;
  /** Calls listener after any change that may alter that Gateway's slice; returns the unsubscribe. */
  subscribe(gateway: string, listener: () => void): () => void;
}
