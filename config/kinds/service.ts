// Service (v1): the VIPs and ports a waypoint answers for, the selector used when no EndpointSlice
// exists, and the labels that bind it to a waypoint.
import { z } from 'zod';
import { clusterIP, dnsLabel, intOrPortName, labels, objectMeta, port } from './common.ts';
import type { KindDefinition } from './registry.ts';

export const servicePortSchema = z.looseObject({
  name: dnsLabel.nullish(),
  port,
  targetPort: intOrPortName.nullish(),
  protocol: z.enum(['TCP', 'UDP', 'SCTP']).nullish(),
  appProtocol: z.string().nullish(),
});

export const serviceSchema = z.looseObject({
  metadata: objectMeta,
  spec: z
    .looseObject({
      type: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName']).nullish(),
      clusterIP: clusterIP.nullish(),
      clusterIPs: z.array(clusterIP).nullish(),
      selector: labels.nullish(),
      ports: z.array(servicePortSchema).nullish(),
    })
    .nullish(),
});

export type Service = z.infer<typeof serviceSchema>;
export type ServicePort = z.infer<typeof servicePortSchema>;

export const serviceKind: KindDefinition<Service> = {
  kind: 'Service',
  groups: [''],
  versions: ['v1'],
  namespaced: true,
  schema: serviceSchema,
};
