// Checks for `node-waypoint validate` beyond what the compiler reports: a policy with HTTP-only
// fields (hosts, methods, paths, requestPrincipals, `request.*` keys) that applies to a Service port
// carried as opaque TCP (protocol tcp or tls). There those fields cannot be evaluated (§2.8): an
// ALLOW rule with one never matches, and DENY/AUDIT/CUSTOM rules ignore them (they match more).
// Used as an extra FilterCompiler, so its warnings land in the snapshot's messages.

import { WAYPOINT_GATEWAY_CLASS as WAYPOINT_CLASS } from '../../config/compile/binding.ts';
import { ROOT_NAMESPACE } from '../../config/compile/policy-target.ts';
import type { FilterCompiler } from '../../config/compile.ts';
import type { AuthorizationPolicy, PolicyTargetRef } from '../../config/kinds/authorization-policy.ts';
import type { ConfigMessage, ServicePortBinding, Snapshot } from '../../config/model.ts';
import { describe, resourcesOf } from '../../config/resource.ts';

const GATEWAY_GROUP = 'gateway.networking.k8s.io';
const OPERATION_HTTP_ONLY = ['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths'] as const;
const SOURCE_HTTP_ONLY = ['requestPrincipals', 'notRequestPrincipals'] as const;

/** The HTTP-only fields of a policy's rules, as field paths. */
export function httpOnlyFields(spec: AuthorizationPolicy['spec']): string[] {
  const out: string[] = [];
  (spec?.rules ?? []).forEach((rule, r) => {
    (rule.from ?? []).forEach((f, i) => {
      for (const k of SOURCE_HTTP_ONLY)
        if (f.source?.[k]?.length) out.push(`spec.rules[${r}].from[${i}].source.${k}`);
    });
    (rule.to ?? []).forEach((t, i) => {
      for (const k of OPERATION_HTTP_ONLY)
        if (t.operation?.[k]?.length) out.push(`spec.rules[${r}].to[${i}].operation.${k}`);
    });
    (rule.when ?? []).forEach((c, i) => {
      if (c.key.startsWith('request.')) out.push(`spec.rules[${r}].when[${i}] (${c.key})`);
    });
  });
  return out;
}

function targets(
  ns: string,
  ref: PolicyTargetRef,
  base: Omit<Snapshot, 'filters'>,
): (b: ServicePortBinding) => boolean {
  const group = ref.group ?? '';
  if (ref.kind === 'Gateway' && group === GATEWAY_GROUP)
    return () => ns === base.gateway.ref.namespace && ref.name === base.gateway.ref.name;
  if (ref.kind === 'GatewayClass' && group === GATEWAY_GROUP)
    return () => ns === ROOT_NAMESPACE && ref.name === WAYPOINT_CLASS;
  if (ref.kind === 'Service' && (group === '' || group === 'core'))
    return (b) => b.service.namespace === ns && b.service.name === ref.name;
  return () => false;
}

export const lintAuthz: FilterCompiler = (resources, base) => {
  const messages: ConfigMessage[] = [];
  const policies = resourcesOf<AuthorizationPolicy>(resources, 'security.istio.io', 'AuthorizationPolicy');
  const opaque = [...base.services.values()].filter((b) => b.protocol === 'tcp' || b.protocol === 'tls');
  for (const r of policies) {
    const spec = r.spec.spec ?? {};
    const refs = [...(spec.targetRef ? [spec.targetRef] : []), ...(spec.targetRefs ?? [])];
    if (refs.length === 0) continue;
    const fields = httpOnlyFields(spec);
    if (fields.length === 0) continue;
    const tests = refs.map((ref) => targets(r.namespace, ref, base));
    const ports = new Set<string>();
    for (const b of opaque)
      if (tests.some((t) => t(b)))
        ports.add(`${b.service.namespace}/${b.service.name}:${b.port} (${b.protocol})`);
    if (ports.size === 0) continue;
    const action = spec.action ?? 'ALLOW';
    const effect =
      action === 'ALLOW'
        ? 'an ALLOW rule with them never matches TCP traffic'
        : `they are ignored for TCP traffic, so the ${action} rule matches more`;
    messages.push({
      severity: 'warning',
      message: `${r.origin}: ${describe(r)}: ${fields.join(', ')}: HTTP-only fields on a TCP port, ${[...ports].join(', ')}: ${effect} (l7-semantics.md §2.8)`,
      origin: r.origin,
      kind: r.kind,
      namespace: r.namespace,
      name: r.name,
      field: fields[0]!,
    });
  }
  return { config: undefined, messages };
};
