// BackendTrafficPolicy (waypoint.node-waypoint.io/v1alpha1): rate limits at the waypoint, modelled
// on Envoy Gateway's BackendTrafficPolicy `rateLimit` (gateway.envoyproxy.io/v1alpha1) with a few
// documented extensions (filters/rate-limit/README.md). Registered by filters/rate-limit/index.ts;
// the store validates the shape, the rate-limit compiler decides attachment and what it rejects.
import { isIP } from 'node:net';
import { z } from 'zod';
import { objectMeta, show } from './common.ts';
import type { KindDefinition } from './registry.ts';

export const RATE_LIMIT_GROUP = 'waypoint.node-waypoint.io';

/** An RE2-style pattern we can run: JavaScript syntax, compiled anchored. */
export function anchoredRegex(pattern: string): RegExp | undefined {
  try {
    return new RegExp(`^(?:${pattern})$`);
  } catch {
    return undefined;
  }
}

/** `10.0.0.0/8`, `fd00::/64` or a bare address (a /32 or /128). */
export function validCidr(text: string): boolean {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(addr);
  if (family === 0) return false;
  if (slash < 0) return true;
  const len = text.slice(slash + 1);
  return /^\d{1,3}$/.test(len) && Number(len) <= (family === 4 ? 32 : 128);
}

/** Exact and RegularExpression need a value; Distinct takes none (it keys on the value found). */
function checkStringMatch(
  m: { type?: string | null; value?: string | null; invert?: boolean | null },
  ctx: z.RefinementCtx,
): void {
  const type = m.type ?? 'Exact';
  if (type === 'Distinct') {
    if (m.value != null && m.value !== '')
      ctx.addIssue({ code: 'custom', path: ['value'], message: 'type Distinct takes no value' });
    if (m.invert)
      ctx.addIssue({ code: 'custom', path: ['invert'], message: 'type Distinct cannot be inverted' });
    return;
  }
  if (m.value == null) {
    ctx.addIssue({ code: 'custom', path: ['value'], message: `type ${type} needs a value` });
    return;
  }
  if (type === 'RegularExpression' && !anchoredRegex(m.value))
    ctx.addIssue({ code: 'custom', path: ['value'], message: `invalid regular expression ${show(m.value)}` });
}

export const rateLimitTargetRefSchema = z.looseObject({
  group: z.string().nullish(),
  kind: z.string(),
  name: z.string(),
  namespace: z.string().nullish(),
  sectionName: z.string().nullish(),
});

const stringMatchType = z.enum(['Exact', 'RegularExpression', 'Distinct']);

export const headerSelectorSchema = z
  .looseObject({
    type: stringMatchType.nullish(),
    name: z.string().min(1).max(256),
    value: z.string().max(1024).nullish(),
    invert: z.boolean().nullish(),
  })
  .superRefine(checkStringMatch);

/** Extension: the client's identity from its mTLS certificate (principal or namespace). */
export const identitySelectorSchema = z
  .looseObject({
    type: stringMatchType.nullish(),
    value: z.string().max(1024).nullish(),
    invert: z.boolean().nullish(),
  })
  .superRefine(checkStringMatch);

export const sourceCidrSchema = z
  .looseObject({
    type: z.enum(['Exact', 'Distinct']).nullish(),
    value: z.string(),
  })
  .superRefine((m, ctx) => {
    if (!validCidr(m.value.trim()))
      ctx.addIssue({ code: 'custom', path: ['value'], message: `expected a CIDR, got ${show(m.value)}` });
  });

/** Extension: the request path (query excluded). */
export const pathSelectorSchema = z
  .looseObject({
    type: z.enum(['Exact', 'PathPrefix', 'RegularExpression']).nullish(),
    value: z.string().min(1),
    invert: z.boolean().nullish(),
  })
  .superRefine((m, ctx) => {
    if (m.type === 'RegularExpression' && !anchoredRegex(m.value))
      ctx.addIssue({
        code: 'custom',
        path: ['value'],
        message: `invalid regular expression ${show(m.value)}`,
      });
    else if (m.type !== 'RegularExpression' && !m.value.startsWith('/'))
      ctx.addIssue({
        code: 'custom',
        path: ['value'],
        message: `expected a path starting with "/", got ${show(m.value)}`,
      });
  });

export const clientSelectorSchema = z.looseObject({
  headers: z.array(headerSelectorSchema).max(16).nullish(),
  sourceCIDR: sourceCidrSchema.nullish(),
  sourcePrincipal: identitySelectorSchema.nullish(),
  sourceNamespace: identitySelectorSchema.nullish(),
  methods: z.array(z.string().min(1)).max(16).nullish(),
  path: pathSelectorSchema.nullish(),
});

export const rateLimitRuleSchema = z.looseObject({
  clientSelectors: z.array(clientSelectorSchema).max(8).nullish(),
  limit: z.looseObject({
    requests: z.number().int().min(0),
    unit: z.enum(['Second', 'Minute', 'Hour', 'Day']),
  }),
  shared: z.boolean().nullish(),
});

/**
 * Extension `scope`: Replica (default, Envoy Gateway's behaviour) enforces each limit in every
 * replica; Waypoint divides it among the live replicas (filters/rate-limit/README.md).
 */
export const localRateLimitSchema = z.looseObject({
  rules: z.array(rateLimitRuleSchema).max(64).nullish(),
  scope: z.enum(['Replica', 'Waypoint']).nullish(),
});

export const backendTrafficPolicySchema = z.looseObject({
  metadata: objectMeta,
  spec: z.looseObject({
    targetRef: rateLimitTargetRefSchema.nullish(),
    targetRefs: z.array(rateLimitTargetRefSchema).max(16).nullish(),
    targetSelectors: z.array(z.unknown()).nullish(),
    rateLimit: z
      .looseObject({
        type: z.enum(['Local', 'Global']),
        local: localRateLimitSchema.nullish(),
        global: z.looseObject({ rules: z.array(rateLimitRuleSchema).max(64).nullish() }).nullish(),
        /** Extension: x-ratelimit-limit/remaining/reset (DRAFT_VERSION_03) on replies and responses. */
        enableXRateLimitHeaders: z.boolean().nullish(),
      })
      .nullish()
      .superRefine((rl, ctx) => {
        if (!rl) return;
        const type = rl.type;
        const block = type === 'Local' ? rl.local : rl.global;
        if (!block)
          ctx.addIssue({
            code: 'custom',
            path: [type === 'Local' ? 'local' : 'global'],
            message: `type ${type} needs spec.rateLimit.${type === 'Local' ? 'local' : 'global'}`,
          });
      }),
  }),
});

export type BackendTrafficPolicy = z.infer<typeof backendTrafficPolicySchema>;
export type RateLimitRuleSpec = z.infer<typeof rateLimitRuleSchema>;
export type ClientSelectorSpec = z.infer<typeof clientSelectorSchema>;
export type RateLimitTargetRef = z.infer<typeof rateLimitTargetRefSchema>;

export const backendTrafficPolicyKind: KindDefinition<BackendTrafficPolicy> = {
  kind: 'BackendTrafficPolicy',
  groups: [RATE_LIMIT_GROUP],
  versions: ['v1alpha1'],
  namespaced: true,
  schema: backendTrafficPolicySchema,
};
