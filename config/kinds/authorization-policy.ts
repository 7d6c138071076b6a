// AuthorizationPolicy (security.istio.io v1 and v1beta1). The schema checks shapes only (lists of
// strings, the action, targetRef form); values (CIDRs, ports, `when` keys, path templates) are
// checked by the authz filter's compiler, because Istio treats a bad value differently per action
// (a bad ALLOW rule is dropped, a bad part of a DENY rule is ignored) rather than rejecting the
// policy (l7-semantics.md §2.7).
import { z } from 'zod';
import { objectMeta } from './common.ts';
import type { KindDefinition } from './registry.ts';

const strings = z.array(z.string()).nullish();

export const authzSourceSchema = z.looseObject({
  principals: strings,
  notPrincipals: strings,
  requestPrincipals: strings,
  notRequestPrincipals: strings,
  namespaces: strings,
  notNamespaces: strings,
  ipBlocks: strings,
  notIpBlocks: strings,
  remoteIpBlocks: strings,
  notRemoteIpBlocks: strings,
  serviceAccounts: strings,
  notServiceAccounts: strings,
});

export const authzOperationSchema = z.looseObject({
  hosts: strings,
  notHosts: strings,
  ports: strings,
  notPorts: strings,
  methods: strings,
  notMethods: strings,
  paths: strings,
  notPaths: strings,
});

export const authzConditionSchema = z.looseObject({
  key: z.string(),
  values: strings,
  notValues: strings,
});

export const authzRuleSchema = z.looseObject({
  from: z.array(z.looseObject({ source: authzSourceSchema.nullish() })).nullish(),
  to: z.array(z.looseObject({ operation: authzOperationSchema.nullish() })).nullish(),
  when: z.array(authzConditionSchema).nullish(),
});

export const policyTargetRefSchema = z.looseObject({
  group: z.string().nullish(),
  kind: z.string(),
  name: z.string(),
  namespace: z.string().nullish(),
});

export const authorizationPolicySchema = z.looseObject({
  metadata: objectMeta.extend({ annotations: z.record(z.string(), z.string()).nullish() }),
  spec: z
    .looseObject({
      action: z.enum(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM']).nullish(),
      provider: z.looseObject({ name: z.string().nullish() }).nullish(),
      rules: z.array(authzRuleSchema).max(512).nullish(),
      selector: z.looseObject({ matchLabels: z.record(z.string(), z.string()).nullish() }).nullish(),
      targetRef: policyTargetRefSchema.nullish(),
      targetRefs: z.array(policyTargetRefSchema).max(16).nullish(),
    })
    .superRefine((spec, ctx) => {
      if (spec.selector && (spec.targetRef || spec.targetRefs?.length)) {
        ctx.addIssue({
          code: 'custom',
          path: ['selector'],
          message: 'selector and targetRefs are exclusive',
        });
      }
      const refs = [...(spec.targetRef ? [spec.targetRef] : []), ...(spec.targetRefs ?? [])];
      refs.forEach((ref, i) => {
        if (ref.namespace) {
          ctx.addIssue({
            code: 'custom',
            path: spec.targetRef && i === 0 ? ['targetRef', 'namespace'] : ['targetRefs', i, 'namespace'],
            message: 'cross-namespace policy targets are not supported',
          });
        }
      });
      if (spec.action === 'CUSTOM' && !spec.provider?.name) {
        ctx.addIssue({ code: 'custom', path: ['provider'], message: 'action CUSTOM needs a provider' });
      }
      if (spec.action !== 'CUSTOM' && spec.action && spec.provider) {
        ctx.addIssue({ code: 'custom', path: ['provider'], message: 'provider is only for action CUSTOM' });
      }
    })
    .nullish(),
});

export type AuthorizationPolicy = z.infer<typeof authorizationPolicySchema>;
export type AuthzRule = z.infer<typeof authzRuleSchema>;
export type AuthzSource = z.infer<typeof authzSourceSchema>;
export type AuthzOperation = z.infer<typeof authzOperationSchema>;
export type PolicyTargetRef = z.infer<typeof policyTargetRefSchema>;

export const authorizationPolicyKind: KindDefinition<AuthorizationPolicy> = {
  kind: 'AuthorizationPolicy',
  groups: ['security.istio.io'],
  versions: ['v1', 'v1beta1'],
  namespaced: true,
  schema: authorizationPolicySchema,
};
