// One authorization decision over a PolicySet (l7-semantics.md §2.2, §2.9, §2.10): CUSTOM, then
// DENY, then ALLOW with the implicit deny; AUDIT and dry-run policies are evaluated and reported but
// never change the outcome.
import { type Action, type Attributes, type CompiledPolicy, type PolicySet, policyId } from './model.ts';

export type DecisionOutcome = 'allow' | 'deny' | 'would_allow' | 'would_deny' | 'audit';

/** One countable fact of a decision (metrics, explain): which policy, its action, what it decided. */
export interface DecisionRecord {
  /** `NS/NAME`, or `none` (no policy matched: the implicit deny, or no enforced ALLOW policy). */
  readonly policy: string;
  readonly action: Action | 'none';
  readonly decision: DecisionOutcome;
  /** `ns[..]-policy[..]-rule[..]` of the matching rule, when one matched. */
  readonly rule?: string;
}

export interface Decision {
  readonly allowed: boolean;
  /** Envoy's response detail: `rbac_access_denied_matched_policy[...]` on a deny. */
  readonly detail: string | undefined;
  /** What was decided and why, for ctx.explain. */
  readonly explain: readonly string[];
  /** The same, as records: shadow results (dry-run, AUDIT) first, then the enforced outcome. */
  readonly records: readonly DecisionRecord[];
  /**
   * The enforced (not dry-run) AUDIT rule that matched, `ns[..]-policy[..]-rule[..]`: Envoy's
   * access_log_hint, so the request is access-logged.
   */
  readonly audit?: string;
}

interface Hit {
  readonly id: string;
  readonly record: { policy: string; action: Action; rule: string };
}

/** The first rule of the first policy that matches. */
function firstMatch(
  policies: readonly CompiledPolicy[],
  a: Attributes,
  dryRun: boolean,
  tcp: boolean,
): Hit | undefined {
  for (const p of policies) {
    if (p.dryRun !== dryRun) continue;
    for (const r of p.rules) {
      if ((tcp ? r.matchTcp : r.match)(a)) {
        const id = policyId(p, r.index);
        return { id, record: { policy: `${p.namespace}/${p.name}`, action: p.action, rule: id } };
      }
    }
  }
  return undefined;
}

const denied = (id: string): string => `rbac_access_denied_matched_policy[${id}]`;

/**
 * `tcp`: the connection carries opaque TCP, so rules are evaluated in their TCP form (§2.8).
 * `skipCustom`: CUSTOM was already decided by the ext_authz filter (custom.ts), ahead of JWT.
 */
export function evaluate(set: PolicySet, a: Attributes, tcp = false, skipCustom = false): Decision {
  const explain: string[] = [];
  const records: DecisionRecord[] = [];
  let audit: string | undefined;
  const done = (allowed: boolean, detail: string | undefined): Decision => ({
    allowed,
    detail,
    explain,
    records,
    ...(audit ? { audit } : {}),
  });

  // Dry-run (shadow) results first: they are only reported.
  if (set.deny.some((p) => p.dryRun)) {
    const m = firstMatch(set.deny, a, true, tcp);
    explain.push(`authz dry-run DENY: ${m ? `would deny (${m.id})` : 'would not deny'}`);
    records.push(
      m
        ? { ...m.record, decision: 'would_deny' }
        : { policy: 'none', action: 'DENY', decision: 'would_allow' },
    );
  }
  if (set.allow.some((p) => p.dryRun)) {
    const m = firstMatch(set.allow, a, true, tcp);
    explain.push(
      `authz dry-run ALLOW: ${m ? `would allow (${m.id})` : 'would deny (no ALLOW rule matched)'}`,
    );
    records.push(
      m
        ? { ...m.record, decision: 'would_allow' }
        : { policy: 'none', action: 'ALLOW', decision: 'would_deny' },
    );
  }
  if (set.audit.length) {
    const enforced = firstMatch(set.audit, a, false, tcp);
    const m = enforced ?? firstMatch(set.audit, a, true, tcp);
    audit = enforced?.id;
    if (m) {
      explain.push(`authz AUDIT matched ${m.id}${enforced ? '' : ' (dry-run)'}`);
      records.push({ ...m.record, decision: 'audit' });
    }
  }

  // CUSTOM on HTTP is the ext_authz filter's (custom.ts, first in the chain). Here it is only
  // reached for TCP and for chains without that filter: a matching rule denies, as Istio does for a
  // missing provider (§2.2); dry-run CUSTOM policies are enforced the same way (Istio's limitation).
  for (const p of skipCustom ? [] : set.custom) {
    for (const r of p.rules) {
      if ((tcp ? r.matchTcp : r.match)(a)) {
        const id = policyId(p, r.index);
        explain.push(
          `authz CUSTOM ${id} matched; ext_authz provider ${p.provider ?? ''} unavailable: denied`,
        );
        records.push({ policy: `${p.namespace}/${p.name}`, action: 'CUSTOM', decision: 'deny', rule: id });
        return done(false, denied(id));
      }
    }
  }

  const deny = firstMatch(set.deny, a, false, tcp);
  if (deny) {
    explain.push(`authz DENY matched ${deny.id}: denied`);
    records.push({ ...deny.record, decision: 'deny' });
    return done(false, denied(deny.id));
  }

  if (!set.allow.some((p) => !p.dryRun)) {
    explain.push('authz: no enforced ALLOW policy applies: allowed');
    records.push({ policy: 'none', action: 'none', decision: 'allow' });
    return done(true, undefined);
  }
  const allow = firstMatch(set.allow, a, false, tcp);
  if (allow) {
    explain.push(`authz ALLOW matched ${allow.id}: allowed`);
    records.push({ ...allow.record, decision: 'allow' });
    return done(true, undefined);
  }
  explain.push('authz: ALLOW policies apply and none matched: denied');
  records.push({ policy: 'none', action: 'ALLOW', decision: 'deny' });
  return done(false, denied('none'));
}
