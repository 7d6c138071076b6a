// Namespace (v1): only its labels matter here, for `istio.io/use-waypoint` on the namespace and for
// listener allowedRoutes selectors.
import { z } from 'zod';
import { objectMeta } from './common.ts';
import type { KindDefinition } from './registry.ts';

export const namespaceSchema = z.looseObject({ metadata: objectMeta });

export type Namespace = z.infer<typeof namespaceSchema>;

export const namespaceKind: KindDefinition<Namespace> = {
  kind: 'Namespace',
  groups: [''],
  versions: ['v1'],
  namespaced: false,
  schema: namespaceSchema,
};
