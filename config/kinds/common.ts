// Field validators shared by the kind schemas. Each one names what it expected and what it got, so a
// rejection reads as `spec.ports[0].port: expected an integer 1-65535, got "eighty"`. Objects are
// loose on purpose: `kubectl get -o yaml` output carries many fields we never read.
import { isIP } from 'node:net';
import { z } from 'zod';

/** Short rendering of a rejected value for messages. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function leaf<T>(check: (v: unknown) => boolean, expected: string) {
  return z.custom<T>(check, {
    error: (iss) => (iss.input === undefined ? 'required' : `expected ${expected}, got ${show(iss.input)}`),
  });
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function isPort(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;
}

export const port = leaf<number>(isPort, 'an integer 1-65535');

export const ip = leaf<string>((v) => typeof v === 'string' && isIP(v) !== 0, 'an IP address');

/** `spec.clusterIP(s)`: an address, or `None` (headless), or empty (not yet allocated). */
export const clusterIP = leaf<string>(
  (v) => typeof v === 'string' && (v === 'None' || v === '' || isIP(v) !== 0),
  'an IP address or "None"',
);

/** RFC 1123 label: namespaces, port names. */
export const dnsLabel = leaf<string>(
  (v) => typeof v === 'string' && v.length <= 63 && DNS_LABEL.test(v),
  'a DNS-1123 label (lowercase letters, digits and "-", at most 63)',
);

/** RFC 1123 subdomain: object names. */
export const dnsSubdomain = leaf<string>(
  (v) => typeof v === 'string' && v.length <= 253 && DNS_SUBDOMAIN.test(v),
  'a DNS-1123 name (lowercase letters, digits, "-" and ".", at most 253)',
);

/** IANA service name, the form of a named (container or target) port. */
export const portName = leaf<string>(
  (v) => typeof v === 'string' && v.length <= 15 && DNS_LABEL.test(v) && /[a-z]/.test(v),
  'a port name (lowercase letters, digits and "-", at most 15, at least one letter)',
);

/** `targetPort`: a number on the pod, or the name of a container port. */
export const intOrPortName = leaf<number | string>(
  (v) => isPort(v) || (typeof v === 'string' && v.length <= 15 && DNS_LABEL.test(v) && /[a-z]/.test(v)),
  'an integer 1-65535 or a port name',
);

export const labels = z.record(z.string(), z.string());

export const objectMeta = z.looseObject({
  name: dnsSubdomain,
  namespace: dnsLabel.optional(),
  labels: labels.nullish(),
  deletionTimestamp: z.string().nullish(),
});

export const labelSelectorRequirement = z
  .looseObject({
    key: z.string(),
    operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
    values: z.array(z.string()).nullish(),
  })
  .superRefine((req, ctx) => {
    const n = req.values?.length ?? 0;
    if ((req.operator === 'In' || req.operator === 'NotIn') && n === 0) {
      ctx.addIssue({ code: 'custom', path: ['values'], message: `operator ${req.operator} needs values` });
    }
    if ((req.operator === 'Exists' || req.operator === 'DoesNotExist') && n > 0) {
      ctx.addIssue({ code: 'custom', path: ['values'], message: `operator ${req.operator} takes no values` });
    }
  });

export const labelSelector = z.looseObject({
  matchLabels: labels.nullish(),
  matchExpressions: z.array(labelSelectorRequirement).nullish(),
});

export type ObjectMeta = z.infer<typeof objectMeta>;
export type LabelSelector = z.infer<typeof labelSelector>;
