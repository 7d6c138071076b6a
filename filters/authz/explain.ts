// The authz filter's part of `explain`: the AuthorizationPolicies attached to the destination, the
// evaluation order (CUSTOM → DENY → ALLOW, AUDIT), each rule re-checked over the request's
// attributes (to show why none matched), and the decision as counted in
// waypoint_authz_decisions_total. It decides nothing: the verdict is the chain's.
import type { ExplainRun, FilterExplanation } from '../../src/pipeline/filter.ts';
import type { Decision, DecisionRecord } from './evaluate.ts';
import { attributes, setFor, tcpAttributes } from './index.ts';
import type { AuthzConfig, CompiledPolicy, PolicySet } from './model.ts';

export interface PolicyView {
  readonly policy: string;
  readonly action: CompiledPolicy['action'];
  readonly dryRun: boolean;
  readonly provider?: string;
  /** Rules in force (rules dropped at compile time are not here; `validate` lists them). */
  readonly rules: number;
  /** `waypoint` (Gateway or GatewayClass target) or `service` (Service target). */
  readonly attachedVia: 'waypoint' | 'service';
}

export interface RuleView {
  readonly policy: string;
  readonly rule: number;
  readonly matched: boolean;
}

/** The JSON fields, in the order explain prints them. */
export interface AuthzExplanation {
  readonly policies: readonly PolicyView[];
  /** CUSTOM → DENY → ALLOW, AUDIT and dry-run flagged, one line per step. */
  readonly order: readonly string[];
  readonly rules: readonly RuleView[];
  /** The outcome as counted in waypoint_authz_decisions_total (empty if authz did not decide). */
  readonly decisions: readonly DecisionRecord[];
}

const ref = (p: CompiledPolicy) => `${p.namespace}/${p.name}`;

/** `decision`: what the filter decided in this run, if it ran. */
export function explainAuthz(
  config: AuthzConfig | undefined,
  run: ExplainRun,
  decision: Decision | undefined,
): FilterExplanation {
  const set = config ? setFor(run.tunnel.binding, config) : undefined;
  const ordered = set ? [...set.custom, ...set.deny, ...set.allow, ...set.audit] : [];
  const attrs = run.ctx ? attributes(run.ctx) : tcpAttributes(run.tunnel);
  const { verdict } = run;
  const decided = ordered.length > 0 && (verdict.kind === 'continue' || verdict.reason === 'authz_denied');
  const fields: AuthzExplanation = {
    policies: policyViews(config, ordered),
    order: set ? evaluationOrder(set) : [],
    rules: ordered.flatMap((p) =>
      p.rules.map((r) => ({
        policy: ref(p),
        rule: r.index,
        matched: (run.phase === 'tcp' ? r.matchTcp : r.match)(attrs),
      })),
    ),
    decisions: decided ? (decision?.records ?? []) : [],
  };
  return { fields: { ...fields }, text: formatAuthz(fields) };
}

function policyViews(config: AuthzConfig | undefined, ordered: readonly CompiledPolicy[]): PolicyView[] {
  const w = config?.waypoint;
  const waypointWide = new Set<CompiledPolicy>(w ? [w.custom, w.deny, w.allow, w.audit].flat() : []);
  return ordered.map((p) => ({
    policy: ref(p),
    action: p.action,
    dryRun: p.dryRun,
    ...(p.provider ? { provider: p.provider } : {}),
    rules: p.rules.length,
    attachedVia: waypointWide.has(p) ? 'waypoint' : 'service',
  }));
}

function evaluationOrder(set: PolicySet): string[] {
  const step = (label: string, list: readonly CompiledPolicy[], note: (p: CompiledPolicy) => string) =>
    `${label}: ${list.length ? list.map((p) => `${ref(p)}${note(p)}`).join(', ') : '(none)'}`;
  return [
    step('1. CUSTOM', set.custom, (p) =>
      p.dryRun ? ' [dry-run, enforced anyway as Istio does]' : ` [provider ${p.provider ?? ''}]`,
    ),
    step('2. DENY', set.deny, (p) => (p.dryRun ? ' [dry-run: reported only]' : '')),
    step('3. ALLOW', set.allow, (p) => (p.dryRun ? ' [dry-run: reported only]' : '')),
    step('   AUDIT', set.audit, () => ' [logged only, never decides]'),
  ];
}

function formatAuthz(r: AuthzExplanation): string[] {
  if (r.policies.length === 0)
    return ['Policies attached: none (no AuthorizationPolicy applies to this destination)'];
  const lines = [`Policies attached (${r.policies.length}):`];
  for (const p of r.policies)
    lines.push(
      `  ${p.policy}  ${p.action}${p.dryRun ? ' (dry-run)' : ''}  ${p.rules} rule${p.rules === 1 ? '' : 's'}  via ${p.attachedVia === 'waypoint' ? 'the waypoint (Gateway/GatewayClass)' : 'Service'}`,
    );
  lines.push('', 'Evaluation order:');
  for (const o of r.order) lines.push(`  ${o}`);
  lines.push('', 'Rules:');
  for (const x of r.rules) lines.push(`  ${x.policy} rule[${x.rule}]: ${x.matched ? 'matches' : 'no match'}`);
  if (r.rules.length === 0) lines.push('  (no rules in force)');
  return lines;
}
