// BackendTrafficPolicy resources → the rate-limit rules in force for each destination of this
// waypoint. The store has already rejected malformed policies (bad regex, bad CIDR, a Distinct with a
// value, type without its block: the last good version stays); this step decides attachment, as
// Envoy Gateway does with targetRefs: our waypoint Gateway (every Service it serves, and workload
// traffic), a Service in the policy's namespace, or an HTTPRoute/GRPCRoute (optionally one rule, by
// sectionName). Targets it cannot honour are warnings, named by file, kind, ns/name and field.
import { BlockList, isIP } from 'node:net';
import { type PolicyTarget, policyTarget } from '../../config/compile/policy-target.ts';
import type { FilterCompiler } from '../../config/compile.ts';
import {
  anchoredRegex,
  type BackendTrafficPolicy,
  type ClientSelectorSpec,
  RATE_LIMIT_GROUP,
  type RateLimitRuleSpec,
  type RateLimitTargetRef,
} from '../../config/kinds/backend-traffic-policy.ts';
import type { ConfigMessage } from '../../config/model.ts';
import { type Resource, resourcesOf } from '../../config/resource.ts';
import {
  type AttachedRule,
  type CidrSelector,
  type ClientSelector,
  type PathSelector,
  type RateLimitConfig,
  type RateLimitRule,
  routeKey,
  type StringSelector,
} from './model.ts';

const GATEWAY_GROUP = 'gateway.networking.k8s.io';

function message(r: Resource, severity: 'error' | 'warning', text: string, field: string): ConfigMessage {
  return {
    severity,
    message: `${r.origin}: ${r.kind} ${r.namespace}/${r.name}: ${field}: ${text}`,
    origin: r.origin,
    kind: r.kind,
    namespace: r.namespace,
    name: r.name,
    field,
  };
}

function stringSelector(
  s: { type?: string | null; value?: string | null; invert?: boolean | null } | null | undefined,
): StringSelector | undefined {
  if (!s) return undefined;
  const type = (s.type ?? 'Exact') as StringSelector['type'];
  const value = s.value ?? '';
  return {
    type,
    value,
    regex: type === 'RegularExpression' ? anchoredRegex(value) : undefined,
    invert: type !== 'Distinct' && (s.invert ?? false),
  };
}

function cidrSelector(s: ClientSelectorSpec['sourceCIDR']): CidrSelector | undefined {
  if (!s) return undefined;
  const text = s.value.trim();
  const list = new BlockList();
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
  if (slash < 0) list.addAddress(addr, family);
  else list.addSubnet(addr, Number(text.slice(slash + 1)), family);
  return {
    type: s.type ?? 'Exact',
    cidr: text,
    contains: (ip) => {
      const f = isIP(ip);
      return f !== 0 && list.check(ip, f === 4 ? 'ipv4' : 'ipv6');
    },
  };
}

function pathSelector(s: ClientSelectorSpec['path']): PathSelector | undefined {
  if (!s) return undefined;
  const type = s.type ?? 'PathPrefix';
  return {
    type,
    value: s.value,
    regex: type === 'RegularExpression' ? anchoredRegex(s.value) : undefined,
    invert: s.invert ?? false,
  };
}

function clientSelector(s: ClientSelectorSpec): ClientSelector {
  return {
    headers: (s.headers ?? []).map((h) => ({ ...stringSelector(h)!, name: h.name.toLowerCase() })),
    sourceCIDR: cidrSelector(s.sourceCIDR),
    sourcePrincipal: stringSelector(s.sourcePrincipal),
    sourceNamespace: stringSelector(s.sourceNamespace),
    methods: (s.methods ?? []).map((m) => m.toUpperCase()),
    path: pathSelector(s.path),
  };
}

/**
 * This replica's share of a waypoint-wide limit: ceil(limit / replicas), so the replicas together
 * allow at least the limit and at most limit + replicas − 1. Even shares are assumed (ztunnel
 * balances connections, not requests), so it is approximate; Global is the exact budget.
 */
export function replicaShare(requests: number, replicas: number): number {
  return Math.ceil(requests / Math.max(1, replicas));
}

function compileRule(
  policy: string,
  type: 'Local' | 'Global',
  index: number,
  spec: RateLimitRuleSpec,
  headers: boolean,
  scope: 'Replica' | 'Waypoint',
  replicas: number,
): RateLimitRule {
  const divided = type === 'Local' && scope === 'Waypoint';
  return {
    policy,
    type,
    index,
    selectors: (spec.clientSelectors ?? []).map(clientSelector),
    requests: divided ? replicaShare(spec.limit.requests, replicas) : spec.limit.requests,
    configuredRequests: spec.limit.requests,
    scope: divided ? 'Waypoint' : 'Replica',
    replicas: divided ? replicas : 1,
    unit: spec.limit.unit,
    shared: spec.shared ?? false,
    headers,
  };
}

type Target = PolicyTarget | { readonly kind: 'route'; readonly key: string; readonly scope: string };

/**
 * Where one targetRef attaches: an HTTPRoute or GRPCRoute (rate limits' own kind of target), else
 * the rule every waypoint policy shares (config/compile/policy-target.ts), minus GatewayClass,
 * which Envoy Gateway's BackendTrafficPolicy does not target.
 */
function targetOf(
  r: Resource,
  ref: RateLimitTargetRef,
  field: string,
  gateway: { namespace: string; name: string },
  messages: ConfigMessage[],
): Target | undefined {
  const group = ref.group ?? '';
  const routeKind = (ref.kind === 'HTTPRoute' || ref.kind === 'GRPCRoute') && group === GATEWAY_GROUP;
  if (routeKind && (!ref.namespace || ref.namespace === r.namespace)) {
    const rule = ref.sectionName ?? '*';
    return {
      kind: 'route',
      key: routeKey(ref.kind, r.namespace, ref.name, rule),
      scope: `${ref.kind} ${r.namespace}/${ref.name}/${rule}`,
    };
  }
  if (ref.kind === 'GatewayClass' && group === GATEWAY_GROUP) {
    messages.push(message(r, 'warning', 'GatewayClass targets are not supported; ignored', field));
    return undefined;
  }
  if (ref.kind === 'Gateway' && group === GATEWAY_GROUP && ref.sectionName)
    messages.push(
      message(
        r,
        'warning',
        'sectionName on a Gateway target is ignored (the waypoint has one listener)',
        field,
      ),
    );
  const { target, why } = policyTarget(r.namespace, ref, gateway);
  if (why) messages.push(message(r, 'warning', `${why}; ignored`, field));
  return target;
}

type Base = Parameters<FilterCompiler>[1];
type RateLimitSpec = NonNullable<BackendTrafficPolicy['spec']['rateLimit']>;

/** The policy's targetRefs with their fields (a warning when it has none). */
function policyRefs(
  r: Resource<BackendTrafficPolicy>,
  messages: ConfigMessage[],
): Array<[RateLimitTargetRef, string]> {
  const spec = r.spec.spec;
  const refs: Array<[RateLimitTargetRef, string]> = [];
  if (spec.targetRef) refs.push([spec.targetRef, 'spec.targetRef']);
  (spec.targetRefs ?? []).forEach((ref, i) => {
    refs.push([ref, `spec.targetRefs[${i}]`]);
  });
  if (refs.length === 0)
    messages.push(message(r, 'warning', 'no targetRefs; the policy applies nowhere', 'spec.targetRefs'));
  return refs;
}

/** The rules of the policy's block (the one its type names; the other is warned about). */
function policyRules(
  r: Resource<BackendTrafficPolicy>,
  rl: RateLimitSpec,
  base: Base,
  messages: ConfigMessage[],
): RateLimitRule[] {
  const other = rl.type === 'Local' ? 'global' : 'local';
  if (rl[other])
    messages.push(
      message(r, 'warning', `ignored: spec.rateLimit.type is ${rl.type}`, `spec.rateLimit.${other}`),
    );
  const block = rl.type === 'Local' ? rl.local : rl.global;
  const headers = rl.enableXRateLimitHeaders ?? false;
  const scope = (rl.type === 'Local' ? rl.local?.scope : undefined) ?? 'Replica';
  if (scope === 'Waypoint' && !base.gateway.replicasKnown)
    messages.push(
      message(
        r,
        'warning',
        `scope Waypoint, but no Ready Pod of waypoint ${base.gateway.ref.namespace}/${base.gateway.ref.name} is in the configuration; assuming 1 replica`,
        'spec.rateLimit.local.scope',
      ),
    );
  const policy = `${r.namespace}/${r.name}`;
  return (block?.rules ?? []).map((rule, i) =>
    compileRule(policy, rl.type, i, rule, headers, scope, base.gateway.replicas),
  );
}

/** Rules by what they attach to, as the policies are read. */
class Attachments {
  readonly waypoint: RateLimitRule[] = [];
  readonly services = new Map<string, AttachedRule[]>();
  readonly routes = new Map<string, AttachedRule[]>();

  /** Each distinct target of the policy gets every rule. */
  attach(rules: readonly RateLimitRule[], targets: readonly Target[]): void {
    const seen = new Set<string>();
    for (const t of targets) {
      const id = t.kind === 'waypoint' ? '' : t.key;
      if (seen.has(id)) continue;
      seen.add(id);
      for (const rule of rules) {
        if (t.kind === 'waypoint') this.waypoint.push(rule);
        else if (t.kind === 'service')
          add(this.services, t.key, { rule, scope: rule.shared ? 'shared' : `Service ${t.key}` });
        else add(this.routes, t.key, { rule, scope: rule.shared ? 'shared' : t.scope });
      }
    }
  }

  /** Waypoint-wide rules go to every bound Service (and workload traffic), before the Service's own. */
  config(base: Base): RateLimitConfig {
    const wide = (rule: RateLimitRule): AttachedRule => ({ rule, scope: rule.shared ? 'shared' : undefined });
    const bound = new Set<string>();
    for (const b of base.services.values()) bound.add(`${b.service.namespace}/${b.service.name}`);
    const byService: Record<string, AttachedRule[]> = {};
    for (const key of [...bound].sort()) {
      const list = [...this.waypoint.map(wide), ...(this.services.get(key) ?? [])];
      if (list.length > 0) byService[key] = list;
    }
    return {
      services: byService,
      workload: this.waypoint.map(wide),
      routes: Object.fromEntries(this.routes),
    };
  }
}

function add(map: Map<string, AttachedRule[]>, key: string, a: AttachedRule): void {
  const list = map.get(key) ?? [];
  list.push(a);
  map.set(key, list);
}

export const compileRateLimit: FilterCompiler = (resources, base) => {
  const messages: ConfigMessage[] = [];
  const attachments = new Attachments();
  const policies = resourcesOf<BackendTrafficPolicy>(resources, RATE_LIMIT_GROUP, 'BackendTrafficPolicy');
  const sorted = [...policies].sort((a, b) =>
    `${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1,
  );
  for (const r of sorted) {
    const spec = r.spec.spec;
    if (spec.targetSelectors && spec.targetSelectors.length > 0)
      messages.push(
        message(r, 'warning', 'targetSelectors are not supported; use targetRefs', 'spec.targetSelectors'),
      );
    const rl = spec.rateLimit;
    if (!rl) continue;
    const refs = policyRefs(r, messages);
    if (refs.length === 0) continue;
    const rules = policyRules(r, rl, base, messages);
    const targets = refs.flatMap(([ref, field]) => targetOf(r, ref, field, base.gateway.ref, messages) ?? []);
    attachments.attach(rules, targets);
  }
  return { config: attachments.config(base), messages };
};
