// GatewayClass (gateway.networking.k8s.io v1 and v1beta1, cluster-scoped): its labels may carry the
// default `istio.io/waypoint-for` for every Gateway of the class.
import { z } from 'zod';
import { objectMeta } from './common.ts';
import type { KindDefinition } from './registry.ts';

export const gatewayClassSchema = z.looseObject({
  metadata: objectMeta,
  spec: z.looseObject({ controllerName: z.string() }),
});

export type GatewayClass = z.infer<typeof gatewayClassSchema>;

export const gatewayClassKind: KindDefinition<GatewayClass> = {
  kind: 'GatewayClass',
  groups: ['gateway.networking.k8s.io'],
  versions: ['v1', 'v1beta1'],
  namespaced: false,
  schema: gatewayClassSchema,
};
