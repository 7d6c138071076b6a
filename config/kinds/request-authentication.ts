// RequestAuthentication (security.istio.io v1 and v1beta1): the JWT rules a waypoint verifies
// (l7-semantics.md §3). Registered by filters/jwt-authn/index.ts; the store validates the shape and
// the jwt-authn compiler decides attachment and reports the fields it cannot honour.
import { z } from 'zod';
import { labels, objectMeta } from './common.ts';
import type { KindDefinition } from './registry.ts';

export const policyTargetRefSchema = z.looseObject({
  group: z.string().nullish(),
  kind: z.string(),
  name: z.string(),
  namespace: z.string().nullish(),
});

export const jwtHeaderSchema = z.looseObject({
  name: z.string().min(1),
  prefix: z.string().nullish(),
});

export const claimToHeaderSchema = z.looseObject({
  header: z.string().min(1),
  claim: z.string().min(1),
});

export const jwtRuleSchema = z
  .looseObject({
    issuer: z.string().min(1),
    audiences: z.array(z.string()).nullish(),
    jwksUri: z.string().nullish(),
    jwks: z.string().nullish(),
    fromHeaders: z.array(jwtHeaderSchema).nullish(),
    fromParams: z.array(z.string()).nullish(),
    fromCookies: z.array(z.string()).nullish(),
    outputPayloadToHeader: z.string().nullish(),
    forwardOriginalToken: z.boolean().nullish(),
    outputClaimToHeaders: z.array(claimToHeaderSchema).nullish(),
    spaceDelimitedClaims: z.array(z.string()).nullish(),
    timeout: z.string().nullish(),
  })
  .superRefine((rule, ctx) => {
    if (rule.jwks && rule.jwksUri) {
      ctx.addIssue({ code: 'custom', path: ['jwks'], message: 'only one of jwks or jwksUri may be set' });
    }
  });

export const requestAuthenticationSchema = z.looseObject({
  metadata: objectMeta,
  spec: z
    .looseObject({
      selector: z.looseObject({ matchLabels: labels.nullish() }).nullish(),
      targetRef: policyTargetRefSchema.nullish(),
      targetRefs: z.array(policyTargetRefSchema).max(16).nullish(),
      jwtRules: z.array(jwtRuleSchema).max(4096).nullish(),
    })
    .nullish(),
});

export type RequestAuthentication = z.infer<typeof requestAuthenticationSchema>;
export type JwtRuleSpec = z.infer<typeof jwtRuleSchema>;
export type PolicyTargetRef = z.infer<typeof policyTargetRefSchema>;

export const requestAuthenticationKind: KindDefinition<RequestAuthentication> = {
  kind: 'RequestAuthentication',
  groups: ['security.istio.io'],
  versions: ['v1', 'v1beta1'],
  namespaced: true,
  schema: requestAuthenticationSchema,
};
