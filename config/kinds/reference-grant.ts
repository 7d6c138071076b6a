// ReferenceGrant (gateway.networking.k8s.io v1beta1): lets routes in another namespace name
// Services of this namespace as backends. Without one, a cross-namespace backendRef does not
// resolve (ResolvedRefs False, RefNotPermitted) and its share of traffic gets a 500.
import { z } from 'zod';
import { objectMeta } from './common.ts';
import type { KindDefinition } from './registry.ts';

export const referenceGrantSchema = z.looseObject({
  metadata: objectMeta,
  spec: z.looseObject({
    from: z
      .array(z.looseObject({ group: z.string(), kind: z.string().min(1), namespace: z.string().min(1) }))
      .min(1)
      .max(16),
    to: z
      .array(z.looseObject({ group: z.string(), kind: z.string().min(1), name: z.string().nullish() }))
      .min(1)
      .max(16),
  }),
});

export type ReferenceGrant = z.infer<typeof referenceGrantSchema>;

export const referenceGrantKind: KindDefinition<ReferenceGrant> = {
  kind: 'ReferenceGrant',
  groups: ['gateway.networking.k8s.io'],
  versions: ['v1beta1', 'v1'],
  namespaced: true,
  schema: referenceGrantSchema,
};
