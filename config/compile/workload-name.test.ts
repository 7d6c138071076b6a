import { describe, expect, it } from 'vitest';
import { workloadOf } from './workload-name.ts';

const owned = (kind: string, name: string, labels: Record<string, string> = {}) => ({
  name: 'p-x',
  generateName: 'p-',
  labels,
  ownerReferences: [
    { kind: 'Other', name: 'not-the-controller' },
    { kind, name, controller: true },
  ],
});

describe('workloadOf (Istio GetDeployMetaFromPod)', () => {
  it('reads a ReplicaSet with the pod-template-hash suffix as its Deployment', () => {
    expect(
      workloadOf('p-x', owned('ReplicaSet', 'reviews-v1-7d9f8c', { 'pod-template-hash': '7d9f8c' })),
    ).toEqual({ name: 'reviews-v1', kind: 'Deployment' });
  });
  it('keeps a bare ReplicaSet (no hash label, or a name without the hash) as a ReplicaSet', () => {
    expect(workloadOf('p-x', owned('ReplicaSet', 'rs-a'))).toEqual({ name: 'rs-a', kind: 'ReplicaSet' });
    expect(workloadOf('p-x', owned('ReplicaSet', 'rs-a', { 'pod-template-hash': 'zz' }))).toEqual({
      name: 'rs-a',
      kind: 'ReplicaSet',
    });
  });
  it('reads a Job named <cronjob>-<8 to 10 digits> as its CronJob, any other Job as a Job', () => {
    expect(workloadOf('p-x', owned('Job', 'backup-28512340'))).toEqual({ name: 'backup', kind: 'CronJob' });
    expect(workloadOf('p-x', owned('Job', 'migrate-123'))).toEqual({ name: 'migrate-123', kind: 'Job' });
  });
  it('names StatefulSets, DaemonSets and DeploymentConfigs by their controller', () => {
    expect(workloadOf('p-x', owned('StatefulSet', 'ledger'))).toEqual({
      name: 'ledger',
      kind: 'StatefulSet',
    });
    expect(workloadOf('p-x', owned('ReplicationController', 'app-3', { deploymentconfig: 'app' }))).toEqual({
      name: 'app',
      kind: 'DeploymentConfig',
    });
  });
  it('is the pod itself without a generated name or a controller owner', () => {
    expect(workloadOf('solo', { name: 'solo' })).toEqual({ name: 'solo', kind: 'Pod' });
    expect(
      workloadOf('solo', {
        name: 'solo',
        ownerReferences: [{ kind: 'ReplicaSet', name: 'rs', controller: true }],
      }),
    ).toEqual({ name: 'solo', kind: 'Pod' });
  });
});
