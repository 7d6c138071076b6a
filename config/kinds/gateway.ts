// Gateway (gateway.networking.k8s.io v1 and v1beta1): the waypoint itself. Its labels carry
// `istio.io/waypoint-for`; its HBONE listener carries allowedRoutes for cross-namespace use.
import { z } from 'zod';
import { dnsSubdomain, labelSelector, objectMeta, port } from './common.ts';
import type { KindDefinition } from './registry.ts';

const listenerSchema = z.looseObject({
  name: dnsSubdomain,
  port,
  protocol: z.string(),
  allowedRoutes: z
    .looseObject({
      namespaces: z
        .looseObject({
          from: z.enum(['All', 'Same', 'Selector']).nullish(),
          selector: labelSelector.nullish(),
        })
        .nullish(),
    })
    .nullish(),
});

export const gatewaySchema = z.looseObject({
  metadata: objectMeta,
  spec: z.looseObject({
    gatewayClassName: dnsSubdomain,
    listeners: z.array(listenerSchema),
  }),
});

export type Gateway = z.infer<typeof gatewaySchema>;
export type Listener = z.infer<typeof listenerSchema>;

export const gatewayKind: KindDefinition<Gateway> = {
  kind: 'Gateway',
  groups: ['gateway.networking.k8s.io'],
  versions: ['v1', 'v1beta1'],
  namespaced: true,
  schema: gatewaySchema,
};
