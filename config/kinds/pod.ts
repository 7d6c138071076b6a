// Pod (v1): identity (service account), addresses, readiness and named container ports, plus the
// labels that bind a workload to a waypoint or select it into a Service.
import { z } from 'zod';
import { ip, objectMeta, port, portName } from './common.ts';
import type { KindDefinition } from './registry.ts';

const containerSchema = z.looseObject({
  ports: z
    .array(
      z.looseObject({
        name: portName.nullish(),
        containerPort: port,
        protocol: z.enum(['TCP', 'UDP', 'SCTP']).nullish(),
      }),
    )
    .nullish(),
});

// Owner references name the workload (Deployment, CronJob, ...) that metrics report, as Istio derives it.
const podMeta = objectMeta.extend({
  generateName: z.string().nullish(),
  ownerReferences: z
    .array(z.looseObject({ kind: z.string(), name: z.string(), controller: z.boolean().nullish() }))
    .nullish(),
});

export const podSchema = z.looseObject({
  metadata: podMeta,
  spec: z
    .looseObject({
      serviceAccountName: z.string().nullish(),
      containers: z.array(containerSchema).nullish(),
    })
    .nullish(),
  status: z
    .looseObject({
      phase: z.string().nullish(),
      podIP: ip.nullish(),
      podIPs: z.array(z.looseObject({ ip })).nullish(),
      conditions: z.array(z.looseObject({ type: z.string(), status: z.string() })).nullish(),
    })
    .nullish(),
});

export type Pod = z.infer<typeof podSchema>;

export const podKind: KindDefinition<Pod> = {
  kind: 'Pod',
  groups: [''],
  versions: ['v1'],
  namespaced: true,
  schema: podSchema,
};
