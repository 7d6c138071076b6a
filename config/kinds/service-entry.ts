// ServiceEntry (networking.istio.io v1, v1beta1, v1alpha3): a service the mesh registry does not
// know by itself (an external API, VMs), bound to a waypoint by `istio.io/use-waypoint` like a
// Service. The schema enforces Istio's own checks (pilot/pkg/config/validation ValidateServiceEntry)
// that would otherwise show up only as traffic going nowhere.
import { isIP } from 'node:net';
import { z } from 'zod';
import { labels, objectMeta, port, show } from './common.ts';
import type { KindDefinition } from './registry.ts';

/** A VIP, or a CIDR (Istio accepts both; only single addresses can be bound here). */
const addressOrCidr = z.custom<string>(
  (v) => {
    if (typeof v !== 'string') return false;
    const [ip, bits, extra] = v.split('/');
    if (extra !== undefined || ip === undefined) return false;
    const family = isIP(ip);
    if (family === 0) return false;
    if (bits === undefined) return true;
    const n = Number(bits);
    return /^\d+$/.test(bits) && n <= (family === 4 ? 32 : 128);
  },
  {
    error: (iss) =>
      iss.input === undefined ? 'required' : `expected an IP address or CIDR, got ${show(iss.input)}`,
  },
);

export const serviceEntryPortSchema = z.looseObject({
  number: port,
  protocol: z.string().nullish(),
  name: z.string().min(1),
  targetPort: port.nullish(),
});

export const workloadEntrySchema = z.looseObject({
  /** An IP, a hostname (DNS resolution) or a unix socket. */
  address: z.string().nullish(),
  ports: z.record(z.string(), port).nullish(),
  labels: labels.nullish(),
  network: z.string().nullish(),
  locality: z.string().nullish(),
  weight: z.number().int().min(0).nullish(),
  serviceAccount: z.string().nullish(),
});

export const serviceEntrySchema = z.looseObject({
  metadata: objectMeta,
  spec: z
    .looseObject({
      hosts: z.array(z.string().min(1)).min(1, 'at least one host is required'),
      addresses: z.array(addressOrCidr).nullish(),
      ports: z.array(serviceEntryPortSchema).nullish(),
      location: z.enum(['MESH_EXTERNAL', 'MESH_INTERNAL']).nullish(),
      resolution: z.enum(['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN']).nullish(),
      endpoints: z.array(workloadEntrySchema).nullish(),
      workloadSelector: z.looseObject({ labels: labels.nullish() }).nullish(),
      exportTo: z.array(z.string()).nullish(),
      subjectAltNames: z.array(z.string()).nullish(),
    })
    .superRefine((spec, ctx) => {
      const names = new Set<string>();
      const numbers = new Set<number>();
      (spec.ports ?? []).forEach((p, i) => {
        if (names.has(p.name))
          ctx.addIssue({
            code: 'custom',
            path: ['ports', i, 'name'],
            message: `duplicate port name ${p.name}`,
          });
        if (numbers.has(p.number))
          ctx.addIssue({
            code: 'custom',
            path: ['ports', i, 'number'],
            message: `duplicate port number ${p.number}`,
          });
        names.add(p.name);
        numbers.add(p.number);
      });
      if (spec.workloadSelector && (spec.endpoints?.length ?? 0) > 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['workloadSelector'],
          message: 'only one of endpoints or workloadSelector may be set',
        });
      }
      if (spec.resolution === 'STATIC') {
        (spec.endpoints ?? []).forEach((e, i) => {
          if (!e.address || (isIP(e.address) === 0 && !e.address.startsWith('unix://'))) {
            ctx.addIssue({
              code: 'custom',
              path: ['endpoints', i, 'address'],
              message: `resolution STATIC needs an IP address, got ${show(e.address ?? undefined)}`,
            });
          }
        });
      }
      (spec.endpoints ?? []).forEach((e, i) => {
        for (const name of Object.keys(e.ports ?? {})) {
          if (!names.has(name))
            ctx.addIssue({
              code: 'custom',
              path: ['endpoints', i, 'ports', name],
              message: `no port named ${name} in spec.ports`,
            });
        }
      });
    }),
});

export type ServiceEntry = z.infer<typeof serviceEntrySchema>;
export type ServiceEntryPort = z.infer<typeof serviceEntryPortSchema>;

export const serviceEntryKind: KindDefinition<ServiceEntry> = {
  kind: 'ServiceEntry',
  groups: ['networking.istio.io'],
  versions: ['v1', 'v1beta1', 'v1alpha3'],
  namespaced: true,
  schema: serviceEntrySchema,
};
