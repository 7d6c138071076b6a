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
  const out: Trail = { explain: [], records: [] };
  const audit = shadowResults(set, a, tcp, out);
  const { allowed, detail } = enforcedResult(set, a, tcp, skipCustom, out);
  return { allowed, detail, ...out, ...(audit ? { audit } : {}) };
}

/** What a decision says as it goes: explain lines and records. */
interface Trail {
  readonly explain: string[];
  readonly records: DecisionRecord[];
}

/** Dry-run and AUDIT results, only reported; the enforced AUDIT rule that matched, if one did. */
function shadowResults(set: PolicySet, a: Attributes, tcp: boolean, out: Trail): string | undefined {
  if (set.deny.some((p) => p.dryRun)) {
    const m = firstMatch(set.deny, a, true, tcp);
    out.explain.push(`authz dry-run DENY: ${m ? `would deny (${m.id})` : 'would not deny'}`);
    out.records.push(
      m
        ? { ...m.record, decision: 'would_deny' }
        : { policy: 'none', action: 'DENY', decision: 'would_allow' },
    );
  }
  if (set.allow.some((p) => p.dryRun)) {
    const m = firstMatch(set.allow, a, true, tcp);
    out.explain.push(
      `authz dry-run ALLOW: ${m ? `would allow (${m.id})` : 'would deny (no ALLOW rule matched)'}`,
    );
    out.records.push(
      m
        ? { ...m.record, decision: 'would_allow' }
        : { policy: 'none', action: 'ALLOW', decision: 'would_deny' },
    );
  }
  if (!set.audit.length) return undefined;
  const enforced = firstMatch(set.audit, a, false, tcp);
  const m = enforced ?? firstMatch(set.audit, a, true, tcp);
  if (m) {
    out.explain.push(`authz AUDIT matched ${m.id}${enforced ? '' : ' (dry-run)'}`);
    out.records.push({ ...m.record, decision: 'audit' });
  }
  return enforced?.id;
}

/** CUSTOM, then DENY, then ALLOW with the implicit deny. */
function enforcedResult(
  set: PolicySet,
  a: Attributes,
  tcp: boolean,
  skipCustom: boolean,
  out: Trail,
): { allowed: boolean; detail: string | undefined } {
  const custom = skipCustom ? undefined : customDeny(set.custom, a, tcp, out);
  if (custom) return { allowed: false, detail: denied(custom) };
  const deny = firstMatch(set.deny, a, false, tcp);
  if (deny) {
    out.explain.push(`authz DENY matched ${deny.id}: denied`);
    out.records.push({ ...deny.record, decision: 'deny' });
    return { allowed: false, detail: denied(deny.id) };
  }
  if (!set.allow.some((p) => !p.dryRun)) {
    out.explain.push('authz: no enforced ALLOW policy applies: allowed');
    out.records.push({ policy: 'none', action: 'none', decision: 'allow' });
    return { allowed: true, detail: undefined };
  }
  const allow = firstMatch(set.allow, a, false, tcp);
  if (allow) {
    out.explain.push(`authz ALLOW matched ${allow.id}: allowed`);
    out.records.push({ ...allow.record, decision: 'allow' });
    return { allowed: true, detail: undefined };
  }
  out.explain.push('authz: ALLOW policies apply and none matched: denied');
  out.records.push({ policy: 'none', action: 'ALLOW', decision: 'deny' });
  return { allowed: false, detail: denied('none') };
}

/**
 * CUSTOM on HTTP is the ext_authz filter's (custom.ts, first in the chain). Here it is only reached
 * for TCP and for chains without that filter: a matching rule denies, as Istio does for a missing
 * provider (§2.2); dry-run CUSTOM policies are enforced the same way (Istio's limitation). The
 * matching rule's id, if one matched.
 */
function customDeny(
  custom: readonly CompiledPolicy[],
  a: Attributes,
  tcp: boolean,
  out: Trail,
): string | undefined {
  for (const p of custom) {
    for (const r of p.rules) {
      if (!(tcp ? r.matchTcp : r.match)(a)) continue;
      const id = policyId(p, r.index);
      out.explain.push(
        `authz CUSTOM ${id} matched; ext_authz provider ${p.provider ?? ''} unavailable: denied`,
      );
      out.records.push({ policy: `${p.namespace}/${p.name}`, action: 'CUSTOM', decision: 'deny', rule: id });
      return id;
    }
  }
  return undefined;
}
