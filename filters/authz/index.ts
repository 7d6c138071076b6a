// The AuthorizationPolicy filter (Istio RBAC at the waypoint). Normalizes the path as Envoy's HCM
// does under Istio's default BASE option (always, whether or not policies exist: it is what goes
// upstream), then evaluates the policies attached to the request's destination.
import { authorizationPolicyKind } from '../../config/kinds/authorization-policy.ts';
import { registerKind } from '../../config/kinds/registry.ts';
import { setAuditHint } from '../../src/pipeline/access-log-hint.ts';
import type { Binding, RequestContext, TunnelInfo } from '../../src/pipeline/context.ts';
import {
  CONTINUE,
  type CounterSpec,
  type Filter,
  type FilterCounter,
  type FilterFactory,
  type FilterMetrics,
  NO_FILTER_METRICS,
  type Verdict,
} from '../../src/pipeline/filter.ts';
import { requestAuth } from '../../src/pipeline/request-auth.ts';
import { pathOnly } from '../path-normalization/index.ts';
import { compileAuthz, compileAuthzWith } from './config.ts';
import { type Decision, evaluate } from './evaluate.ts';
import { explainAuthz } from './explain.ts';
import type { ExtensionProvider } from './mesh-config.ts';
import { type Attributes, type AuthzConfig, EMPTY_SET, type PolicySet } from './model.ts';

registerKind(authorizationPolicyKind);

export const AUTHZ = 'authz';

/** Set by the ext_authz filter (custom.ts) once it has decided CUSTOM for the request. */
export const CUSTOM_DECIDED: unique symbol = Symbol('authz.customDecided');

/** The TCP connections whose CUSTOM policies the ext_authz filter (custom.ts) has decided. */
export const customDecidedTcp = new WeakSet<TunnelInfo>();

/** What a request offers to match (exported for `explain`, which re-checks each rule). */
export function attributes(ctx: RequestContext): Attributes {
  const t = ctx.tunnel;
  return {
    peerUri: t.peer.uri,
    sourceIp: t.source.ip,
    // The waypoint trusts no XFF hops (use_remote_address=false, no numTrustedProxies).
    remoteIp: t.source.ip,
    destinationIp: t.destination.ip,
    destinationPort: t.destination.port,
    method: ctx.method,
    host: ctx.authority,
    path: pathOnly(ctx.path),
    header: (name) => {
      const v = ctx.headers[name];
      if (v === undefined) return undefined;
      return Array.isArray(v) ? v.join(',') : v;
    },
    auth: requestAuth(ctx),
  };
}

function policiesFor(ctx: RequestContext, config: AuthzConfig): PolicySet {
  return setFor(ctx.tunnel.binding, config);
}

function isEmpty(set: PolicySet): boolean {
  return (
    set === EMPTY_SET || (!set.allow.length && !set.deny.length && !set.audit.length && !set.custom.length)
  );
}

/** What a TCP connection offers to match: who, from where, to which port; no HTTP. */
export function tcpAttributes(t: TunnelInfo): Attributes {
  return {
    peerUri: t.peer.uri,
    sourceIp: t.source.ip,
    remoteIp: t.source.ip,
    destinationIp: t.destination.ip,
    destinationPort: t.destination.port,
    method: '',
    host: '',
    path: '',
    header: () => undefined,
    auth: undefined,
  };
}

/** The policies in force for a destination. */
export function setFor(b: Binding, config: AuthzConfig): PolicySet {
  if (b.kind === 'service')
    return config.services.get(`${b.service.namespace}/${b.service.name}`) ?? config.waypoint;
  return config.waypoint;
}

/** Every decision the filter makes (HTTP and TCP); policy names come from the configuration. */
const DECISIONS: CounterSpec = {
  name: 'waypoint_authz_decisions_total',
  help: 'AuthorizationPolicy decisions (HTTP requests and TCP connections), by deciding policy (NS/NAME or none), action and decision (allow, deny; dry-run: would_allow, would_deny; audit).',
  labels: ['policy', 'action', 'decision'],
};

function count(decisions: FilterCounter, d: Decision): void {
  for (const r of d.records) decisions.inc(r.policy, r.action, r.decision);
}

/**
 * `metrics` counts the decisions. `explaining` (explain's chain): the filter keeps each decision,
 * by request context or TCP tunnel, for its explain hook.
 */
export function createAuthzFilter(
  config: AuthzConfig | undefined,
  metrics: FilterMetrics = NO_FILTER_METRICS,
  explaining = false,
): Filter {
  const kept = explaining ? new WeakMap<object, Decision>() : undefined;
  const decisions = metrics.counter(DECISIONS);
  return {
    name: AUTHZ,
    explain: (run) => explainAuthz(config, run, kept?.get(run.ctx ?? run.tunnel)),
    onTcpConnection(tunnel, explain): Verdict {
      if (!config || config.policyCount === 0) return CONTINUE;
      const set = setFor(tunnel.binding, config);
      if (isEmpty(set)) return CONTINUE;
      const d = evaluate(set, tcpAttributes(tunnel), true, customDecidedTcp.has(tunnel));
      explain.push(...d.explain);
      count(decisions, d);
      kept?.set(tunnel, d);
      if (d.allowed) return CONTINUE;
      return { kind: 'reply', reason: 'authz_denied', ...(d.detail ? { detail: d.detail } : {}) };
    },
    onRequestHeaders(ctx): Verdict {
      if (!config || config.policyCount === 0) return CONTINUE;
      const set = policiesFor(ctx, config);
      if (isEmpty(set)) return CONTINUE;
      const d = evaluate(set, attributes(ctx), false, ctx.attributes.has(CUSTOM_DECIDED));
      ctx.explain.push(...d.explain);
      if (d.audit) setAuditHint(ctx, d.audit);
      count(decisions, d);
      kept?.set(ctx, d);
      if (d.allowed) return CONTINUE;
      return { kind: 'reply', reason: 'authz_denied', ...(d.detail ? { detail: d.detail } : {}) };
    },
  };
}

/**
 * The RBAC filter; `extensionProviders` (the mesh config's) are resolved by its compile step. A
 * function is read at every compile (mesh-config reload).
 */
export function authzFilterWith(
  extensionProviders: readonly ExtensionProvider[] | (() => readonly ExtensionProvider[]),
): FilterFactory {
  return {
    name: AUTHZ,
    compile:
      typeof extensionProviders === 'function' || extensionProviders.length
        ? compileAuthzWith(extensionProviders)
        : compileAuthz,
    create(snapshot, context) {
      const config = snapshot.filters[AUTHZ] as AuthzConfig | undefined;
      return createAuthzFilter(config, context?.metrics, context?.explaining);
    },
  };
}
