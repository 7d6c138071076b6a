// EndpointSlice (discovery.k8s.io/v1): the endpoints of a Service and their conditions. Empty slices
// come back from the API server as `endpoints: null`, hence the nullish lists.
import { isIP } from 'node:net';
import { z } from 'zod';
import { dnsLabel, objectMeta, port, show } from './common.ts';
import type { KindDefinition } from './registry.ts';

const objectReference = z.looseObject({
  kind: z.string().nullish(),
  name: z.string().nullish(),
  namespace: z.string().nullish(),
});

const endpointSchema = z.looseObject({
  addresses: z.array(z.string()),
  conditions: z
    .looseObject({
      ready: z.boolean().nullish(),
      serving: z.boolean().nullish(),
      terminating: z.boolean().nullish(),
    })
    .nullish(),
  targetRef: objectReference.nullish(),
});

const endpointPortSchema = z.looseObject({
  // An empty name is how the API server writes the single unnamed port.
  name: z.union([z.literal(''), dnsLabel]).nullish(),
  port: port.nullish(),
  protocol: z.enum(['TCP', 'UDP', 'SCTP']).nullish(),
  appProtocol: z.string().nullish(),
});

const FAMILY: Record<string, number> = { IPv4: 4, IPv6: 6 };

export const endpointSliceSchema = z
  .looseObject({
    metadata: objectMeta,
    addressType: z.enum(['IPv4', 'IPv6', 'FQDN']),
    endpoints: z.array(endpointSchema).nullish(),
    ports: z.array(endpointPortSchema).nullish(),
  })
  .superRefine((slice, ctx) => {
    const family = FAMILY[slice.addressType];
    if (family === undefined) return; // FQDN slices carry names; they are skipped when compiling.
    slice.endpoints?.forEach((ep, i) => {
      ep.addresses.forEach((addr, j) => {
        if (isIP(addr) !== family) {
          ctx.addIssue({
            code: 'custom',
            path: ['endpoints', i, 'addresses', j],
            message: `expected an ${slice.addressType} address, got ${show(addr)}`,
          });
        }
      });
    });
  });

export type EndpointSlice = z.infer<typeof endpointSliceSchema>;

export const endpointSliceKind: KindDefinition<EndpointSlice> = {
  kind: 'EndpointSlice',
  groups: ['discovery.k8s.io'],
  versions: ['v1'],
  namespaced: true,
  schema: endpointSliceSchema,
};
