// The CRD users apply (deploy/base/crds) and the schema the waypoint validates with must agree: same
// group, kind and version, same enums, same fields.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  backendTrafficPolicyKind,
  backendTrafficPolicySchema,
  clientSelectorSchema,
  localRateLimitSchema,
  rateLimitRuleSchema,
} from './backend-traffic-policy.ts';

type Props = { properties: Record<string, Props>; items: Props; enum?: string[] };

const crd = parse(
  readFileSync(new URL('../../deploy/base/crds/backend-traffic-policy.yaml', import.meta.url), 'utf8'),
  { merge: true },
) as {
  spec: {
    group: string;
    names: { kind: string };
    versions: Array<{ name: string; schema: { openAPIV3Schema: Props } }>;
  };
};
const spec = crd.spec.versions[0]!.schema.openAPIV3Schema.properties.spec!;
const rule = spec.properties.rateLimit!.properties.local!.properties.rules!.items;
const selector = rule.properties.clientSelectors!.items;

describe('deploy/base/crds/backend-traffic-policy.yaml', () => {
  it('names the kind the waypoint registers', () => {
    expect(crd.spec.group).toBe(backendTrafficPolicyKind.groups[0]);
    expect(crd.spec.names.kind).toBe(backendTrafficPolicyKind.kind);
    expect(crd.spec.versions.map((v) => v.name)).toEqual(backendTrafficPolicyKind.versions);
  });

  it('has the same fields and enums as the validation schema', () => {
    expect(Object.keys(selector.properties).sort()).toEqual(Object.keys(clientSelectorSchema.shape).sort());
    expect(Object.keys(rule.properties).sort()).toEqual(Object.keys(rateLimitRuleSchema.shape).sort());
    expect(rule.properties.limit!.properties.unit!.enum).toEqual(
      rateLimitRuleSchema.shape.limit.shape.unit.options,
    );
    expect(spec.properties.rateLimit!.properties.type!.enum).toEqual(['Local', 'Global']);
    const local = spec.properties.rateLimit!.properties.local!;
    expect(Object.keys(local.properties).sort()).toEqual(Object.keys(localRateLimitSchema.shape).sort());
    expect(local.properties.scope!.enum).toEqual(localRateLimitSchema.shape.scope.unwrap().unwrap().options);
  });

  it('a sample policy passes the validation schema', () => {
    const doc = {
      metadata: { name: 'api-limits', namespace: 'shop' },
      spec: {
        targetRefs: [{ group: '', kind: 'Service', name: 'api' }],
        rateLimit: {
          type: 'Global',
          global: {
            rules: [
              {
                clientSelectors: [{ headers: [{ name: 'x-user-id', type: 'Distinct' }] }],
                limit: { requests: 100, unit: 'Minute' },
              },
            ],
          },
        },
      },
    };
    expect(backendTrafficPolicySchema.safeParse(doc).success).toBe(true);
  });
});
