// One authorization decision over a PolicySet (l7-semantics.md §2.2, §2.9, §2.10): CUSTOM, then
// DENY, then ALLOW with the implicit deny; AUDIT and dry-run policies are evaluated and reported but
// never change the outcome.
import { type Attributes, type CompiledPolicy, type PolicySet, policyId } from './model.ts';

export interface Decision {
  readonly allowed: boolean;
  /** Envoy's response detail: `rbac_access_denied_matched_policy[...]` on a deny. */
  readonly detail: string | undefined;
  /** What was decided and why, for ctx.explain. */
  readonly explain: readonly string[];
}

/** The first rule of the first policy that matches, as `ns[..]-policy[..]-rule[..]`. */
function firstMatch(
  policies: readonly CompiledPolicy[],
  a: Attributes,
  dryRun: boolean,
  tcp: boolean,
): string | undefined {
  for (const p of policies) {
    if (p.dryRun !== dryRun) continue;
    for (const r of p.rules) if ((tcp ? r.matchTcp : r.match)(a)) return policyId(p, r.index);
  }
  return undefined;
}

const denied = (id: string): string => `rbac_access_denied_matched_policy[${id}]`;

/** `tcp`: the connection carries opaque TCP, so rules are evaluated in their TCP form (§2.8). */
export function evaluate(set: PolicySet, a: Attributes, tcp = false): Decision {
  const explain: string[] = [];

  // Dry-run (shadow) results first: they are only reported.
  if (set.deny.some((p) => p.dryRun)) {
    const m = firstMatch(set.deny, a, true, tcp);
    explain.push(`authz dry-run DENY: ${m ? `would deny (${m})` : 'would not deny'}`);
  }
  if (set.allow.some((p) => p.dryRun)) {
    const m = firstMatch(set.allow, a, true, tcp);
    explain.push(`authz dry-run ALLOW: ${m ? `would allow (${m})` : 'would deny (no ALLOW rule matched)'}`);
  }
  if (set.audit.length) {
    const m = firstMatch(set.audit, a, false, tcp) ?? firstMatch(set.audit, a, true, tcp);
    if (m) explain.push(`authz AUDIT matched ${m}`);
  }

  // CUSTOM: TODO(ext_authz): call the provider for a matching rule. Until providers exist every
  // provider is "missing", which Istio turns into a DENY on the matching rules (§2.2). Dry-run CUSTOM
  // policies are enforced the same way (Istio's known limitation).
  for (const p of set.custom) {
    for (const r of p.rules) {
      if ((tcp ? r.matchTcp : r.match)(a)) {
        const id = policyId(p, r.index);
        explain.push(
          `authz CUSTOM ${id} matched; ext_authz provider ${p.provider ?? ''} unavailable: denied`,
        );
        return { allowed: false, detail: denied(id), explain };
      }
    }
  }

  const deny = firstMatch(set.deny, a, false, tcp);
  if (deny) {
    explain.push(`authz DENY matched ${deny}: denied`);
    return { allowed: false, detail: denied(deny), explain };
  }

  if (!set.allow.some((p) => !p.dryRun)) {
    explain.push('authz: no enforced ALLOW policy applies: allowed');
    return { allowed: true, detail: undefined, explain };
  }
  const allow = firstMatch(set.allow, a, false, tcp);
  if (allow) {
    explain.push(`authz ALLOW matched ${allow}: allowed`);
    return { allowed: true, detail: undefined, explain };
  }
  explain.push('authz: ALLOW policies apply and none matched: denied');
  return { allowed: false, detail: denied('none'), explain };
}
