// The source_* and destination_* label values of Istio's standard metrics for one workload, resolved
// once per pod (or per baggage string) and shared by every request from or to it. Istio's rules
// (pkg/config/labels CanonicalService/CanonicalRevision, proxy metadata app/version): canonical name
// from service.istio.io/canonical-name, app.kubernetes.io/name, app, else the workload; canonical
// revision from service.istio.io/canonical-revision, app.kubernetes.io/version, version, else latest.
import type { PodInfo } from '../../config/model.ts';

export interface WorkloadLabels {
  readonly workload: string;
  readonly namespace: string;
  readonly principal: string;
  readonly app: string;
  readonly version: string;
  readonly canonicalService: string;
  readonly canonicalRevision: string;
  readonly cluster: string;
}

export const UNKNOWN = 'unknown';

type Labels = Readonly<Record<string, string>>;

const first = (labels: Labels, keys: readonly string[]): string | undefined => {
  for (const k of keys) if (labels[k]) return labels[k];
  return undefined;
};

export function canonicalService(labels: Labels, workload: string): string {
  return first(labels, ['service.istio.io/canonical-name', 'app.kubernetes.io/name', 'app']) ?? workload;
}

export function canonicalRevision(labels: Labels): string {
  return (
    first(labels, ['service.istio.io/canonical-revision', 'app.kubernetes.io/version', 'version']) ?? 'latest'
  );
}

/** A workload nothing is known about, but perhaps its principal (from its certificate). */
export function unknownWorkload(principal: string, cluster: string): WorkloadLabels {
  return Object.freeze({
    workload: UNKNOWN,
    namespace: UNKNOWN,
    principal,
    app: UNKNOWN,
    version: UNKNOWN,
    canonicalService: UNKNOWN,
    canonicalRevision: UNKNOWN,
    cluster,
  });
}

export function podWorkload(pod: PodInfo, principal: string, cluster: string): WorkloadLabels {
  const l = pod.labels;
  return Object.freeze({
    workload: pod.workload,
    namespace: pod.namespace,
    principal,
    app: first(l, ['app', 'app.kubernetes.io/name']) ?? UNKNOWN,
    version: first(l, ['version', 'app.kubernetes.io/version']) ?? UNKNOWN,
    canonicalService: canonicalService(l, pod.workload),
    canonicalRevision: canonicalRevision(l),
    cluster,
  });
}

const WORKLOAD_KEYS = [
  'k8s.deployment.name',
  'k8s.statefulset.name',
  'k8s.daemonset.name',
  'k8s.cronjob.name',
  'k8s.job.name',
  'k8s.replicaset.name',
  'k8s.pod.name',
  'k8s.workload.name',
];

/**
 * The source as ztunnel describes it in the CONNECT's `baggage` (ztunnel baggage.rs: k8s.cluster.name,
 * k8s.namespace.name, k8s.<type>.name, service.name, service.version, app.name, app.version). Undefined
 * when it names no workload and no namespace (then the pod lookup by IP decides).
 */
export function baggageWorkload(
  baggage: string,
  principal: string,
  cluster: string,
): WorkloadLabels | undefined {
  const kv = new Map<string, string>();
  for (const member of baggage.split(',')) {
    const [pair] = member.split(';');
    const eq = pair?.indexOf('=') ?? -1;
    if (!pair || eq <= 0) continue;
    const value = safeDecode(pair.slice(eq + 1).trim());
    if (value) kv.set(pair.slice(0, eq).trim(), value);
  }
  const workload = WORKLOAD_KEYS.map((k) => kv.get(k)).find((v) => v !== undefined);
  const namespace = kv.get('k8s.namespace.name');
  if (!workload || !namespace) return undefined;
  const canonical = kv.get('service.name') ?? workload;
  return Object.freeze({
    workload,
    namespace,
    principal,
    app: kv.get('app.name') ?? canonical,
    version: kv.get('app.version') ?? kv.get('service.version') ?? UNKNOWN,
    canonicalService: canonical,
    canonicalRevision: kv.get('service.version') ?? 'latest',
    cluster: kv.get('k8s.cluster.name') ?? cluster,
  });
}

function safeDecode(v: string): string {
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}
