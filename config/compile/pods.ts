// What a Pod contributes to endpoints and workloads: its addresses, its readiness the way the
// EndpointSlice controller derives it, and its SPIFFE identity (the service account it runs as).
import type { Pod } from '../kinds/pod.ts';
import type { PodInfo } from '../model.ts';
import type { Resource } from '../resource.ts';
import { canonicalIP } from './addresses.ts';
import { NO_LABELS } from './labels.ts';
import { workloadOf } from './workload-name.ts';

export interface PodConditions {
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
}

/** status.podIPs, else status.podIP; canonical and without repeats. */
export function podIPs(pod: Resource<Pod>): string[] {
  const status = pod.spec.status;
  const listed = status?.podIPs?.map((p) => p.ip) ?? [];
  const all = listed.length > 0 ? listed : status?.podIP ? [status.podIP] : [];
  return [...new Set(all.map(canonicalIP))];
}

/** Succeeded and Failed pods keep their IP in status, but the IP may already belong to a new pod. */
export function isTerminal(pod: Resource<Pod>): boolean {
  const phase = pod.spec.status?.phase;
  return phase === 'Succeeded' || phase === 'Failed';
}

/**
 * The Ready condition when the pod has conditions; otherwise ready when phase is absent or Running
 * (hand-written manifests rarely carry status). A pod being deleted is terminating: not ready, but
 * still serving if it was ready, as the EndpointSlice controller reports it.
 */
export function podConditions(pod: Resource<Pod>): PodConditions {
  const status = pod.spec.status;
  const conditions = status?.conditions ?? [];
  const base =
    conditions.length > 0
      ? conditions.some((c) => c.type === 'Ready' && c.status === 'True')
      : status?.phase == null || status.phase === 'Running';
  const terminating = Boolean(pod.spec.metadata.deletionTimestamp);
  return { ready: base && !terminating, serving: base, terminating };
}

export function serviceAccountOf(pod: Resource<Pod>): string {
  return pod.spec.spec?.serviceAccountName || 'default';
}

export function spiffeIdentity(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

export function podInfo(pod: Resource<Pod>): PodInfo {
  return {
    namespace: pod.namespace,
    name: pod.name,
    labels: pod.spec.metadata.labels ?? NO_LABELS,
    serviceAccount: serviceAccountOf(pod),
    workload: workloadOf(pod.name, pod.spec.metadata).name,
  };
}

/** The number of the container port with that name, if the pod declares one. */
export function namedContainerPort(pod: Resource<Pod>, name: string): number | undefined {
  for (const c of pod.spec.spec?.containers ?? []) {
    for (const p of c.ports ?? []) if (p.name === name) return p.containerPort;
  }
  return undefined;
}
