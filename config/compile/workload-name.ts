// The workload a pod belongs to, named as Istio names it for telemetry (pkg/kube GetDeployMetaFromPod):
// the controller owner of a generated pod, with a ReplicaSet read as its Deployment (the pod-template-hash
// suffix dropped), a Job named `<cronjob>-<8 to 10 digits>` read as its CronJob, a ReplicationController
// with a `deploymentconfig` label read as that DeploymentConfig; any other pod is its own workload.
import type { Pod } from '../kinds/pod.ts';

export interface WorkloadRef {
  readonly name: string;
  readonly kind: string;
}

const CRONJOB_JOB = /^(.+)-\d{8,10}$/;

export function workloadOf(name: string, metadata: Pod['metadata']): WorkloadRef {
  const labels = metadata.labels ?? {};
  const owner = metadata.generateName
    ? metadata.ownerReferences?.find((r) => r.controller === true)
    : undefined;
  if (!owner) return { name, kind: 'Pod' };
  const hash = labels['pod-template-hash'];
  if (owner.kind === 'ReplicaSet' && hash && owner.name.endsWith(`-${hash}`))
    return { name: owner.name.slice(0, -(hash.length + 1)), kind: 'Deployment' };
  if (owner.kind === 'ReplicationController' && labels.deploymentconfig)
    return { name: labels.deploymentconfig, kind: 'DeploymentConfig' };
  const cron = owner.kind === 'Job' ? CRONJOB_JOB.exec(owner.name) : null;
  if (cron?.[1]) return { name: cron[1], kind: 'CronJob' };
  return { name: owner.name, kind: owner.kind };
}
