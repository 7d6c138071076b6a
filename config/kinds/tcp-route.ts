// TCPRoute (gateway.networking.k8s.io v1alpha2): weighted backends for a TCP port.
import { z } from 'zod';
import { objectMeta } from './common.ts';
import { intRange, parentRefSchema, withDefault } from './http-route.ts';
import type { KindDefinition } from './registry.ts';

export const tcpBackendRefSchema = z
  .looseObject({
    group: withDefault(z.string(), ''),
    kind: withDefault(z.string().min(1), 'Service'),
    name: z.string().min(1),
    namespace: z.string().nullish(),
    port: intRange(1, 65535).nullish(),
    weight: withDefault(intRange(0, 1_000_000), 1),
  })
  .superRefine((ref, ctx) => {
    if (ref.group === '' && ref.kind === 'Service' && ref.port == null) {
      ctx.addIssue({ code: 'custom', path: ['port'], message: 'required for a Service backend' });
    }
  });

export const tcpRouteRuleSchema = z.looseObject({
  name: z.string().min(1).max(253).nullish(),
  backendRefs: z.array(tcpBackendRefSchema).min(1).max(16),
});

export const tcpRouteSchema = z.looseObject({
  metadata: objectMeta,
  spec: z.looseObject({
    parentRefs: z.array(parentRefSchema).max(32).nullish(),
    rules: z.array(tcpRouteRuleSchema).min(1).max(16),
  }),
});

export type TcpRoute = z.infer<typeof tcpRouteSchema>;
export type TcpRouteRule = z.infer<typeof tcpRouteRuleSchema>;
export type TcpBackendRef = z.infer<typeof tcpBackendRefSchema>;

export const tcpRouteKind: KindDefinition<TcpRoute> = {
  kind: 'TCPRoute',
  groups: ['gateway.networking.k8s.io'],
  versions: ['v1alpha2'],
  namespaced: true,
  schema: tcpRouteSchema,
};
