// AuthorizationPolicy resources → AuthzConfig, once per snapshot. Attachment follows Istio's
// waypoint (l7-semantics.md §2.1); values are compiled into matchers here so a request only
// matches. Invalid parts are handled as istiod does (§2.7): in an ALLOW policy the whole rule is
// dropped, in DENY/AUDIT/CUSTOM only the bad value or condition is (a broader match); an unknown
// `when` key drops the rule whatever the action. Each case is a warning naming policy and field.
import { isIP } from 'node:net';
import { policyTarget } from '../../config/compile/policy-target.ts';
import type { FilterCompiler } from '../../config/compile.ts';
import type { AuthorizationPolicy, AuthzRule } from '../../config/kinds/authorization-policy.ts';
import type { Service } from '../../config/kinds/service.ts';
import type { ConfigMessage, Snapshot } from '../../config/model.ts';
import { describe, type Resource, resourcesOf } from '../../config/resource.ts';
import type { ResolvedProvider } from './ext-authz.ts';
import {
  anyOf,
  cidrMatcher,
  type Match,
  namespaceMatcher,
  parsePort,
  pathMatcher,
  principalMatcher,
  requestPrincipalMatcher,
  serviceAccountMatcher,
  stringMatcher,
} from './match.ts';
import type { ExtensionProvider } from './mesh-config.ts';
import {
  type Action,
  type Attributes,
  type AuthzConfig,
  type CompiledPolicy,
  type CompiledRule,
  EMPTY_SET,
  type PolicySet,
  type Predicate,
} from './model.ts';

const DRY_RUN = 'istio.io/dry-run';

type Policy = Resource<AuthorizationPolicy>;

/** Raised inside a rule compile: the field path and what is wrong. */
interface Problem {
  readonly field: string;
  readonly text: string;
  /** An unknown `when` key drops the rule for every action. */
  readonly dropsRule?: boolean;
}

class RuleCompiler {
  readonly problems: Problem[] = [];
  readonly action: Action;
  readonly namespace: string;

  constructor(action: Action, namespace: string) {
    this.action = action;
    this.namespace = namespace;
  }

  /**
   * One field with values and notValues: (any value) AND NOT (any notValue). Invalid values are
   * reported; they are dropped (the rule's fate is decided by the caller from `problems`).
   */
  field<T>(
    field: string,
    values: readonly string[] | null | undefined,
    notValues: readonly string[] | null | undefined,
    build: (v: string) => Match | string,
    get: (a: Attributes) => T,
    test: (m: Match, value: T) => boolean,
  ): Predicate | undefined {
    const compile = (list: readonly string[] | null | undefined, name: string): Match[] => {
      const out: Match[] = [];
      (list ?? []).forEach((v, i) => {
        const m = build(v);
        if (typeof m === 'string') this.problems.push({ field: `${name}[${i}]`, text: m });
        else out.push(m);
      });
      return out;
    };
    const pos = compile(values, field);
    const neg = compile(notValues, `not${field[0]!.toUpperCase()}${field.slice(1)}`);
    if (pos.length === 0 && neg.length === 0) return undefined;
    const any = pos.length ? anyOf(pos) : undefined;
    const none = neg.length ? anyOf(neg) : undefined;
    return (a) => {
      const value = get(a);
      if (any && !test(any, value)) return false;
      if (none && test(none, value)) return false;
      return true;
    };
  }
}

const str = (m: Match, v: string | undefined): boolean => v !== undefined && m(v);

/** Istio ports are strings holding an integer. */
function portMatch(v: string): Match | string {
  const n = parsePort(v);
  if (n === undefined) return `invalid port ${JSON.stringify(v)}`;
  const text = String(n);
  return (p) => p === text;
}

function cidr(v: string): Match | string {
  return cidrMatcher([v]);
}

function and(preds: readonly (Predicate | undefined)[]): Predicate {
  const list = preds.filter((p): p is Predicate => p !== undefined);
  if (list.length === 0) return () => true;
  if (list.length === 1) return list[0]!;
  return (a) => {
    for (const p of list) if (!p(a)) return false;
    return true;
  };
}

function or(preds: readonly Predicate[]): Predicate {
  if (preds.length === 1) return preds[0]!;
  return (a) => {
    for (const p of preds) if (p(a)) return true;
    return false;
  };
}

const WHEN_HEADER = /^request\.(?:experimental\.inline\.)?headers\[(.+)\]$/;
const WHEN_CLAIM = /^request\.auth\.claims((?:\[[^\]]+\])+)$/;
const SPACE_DELIMITED = new Set(['scope', 'permission']);

function claimValues(auth: Attributes['auth'], path: readonly string[]): string[] {
  if (!auth) return [];
  let v: unknown = auth.claims;
  for (const key of path) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return [];
    v = (v as Record<string, unknown>)[key];
  }
  const last = path[path.length - 1]!;
  const split = (s: string) => (path.length === 1 && SPACE_DELIMITED.has(last) ? s.split(' ') : [s]);
  if (typeof v === 'string') return split(v);
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  return [];
}

/** A request principal `issuer/subject` as one string, matched against Istio's `iss/sub` pattern. */
function requestPrincipalMatch(v: string): Match {
  const m = requestPrincipalMatcher(v);
  return (p) => {
    const slash = p.lastIndexOf('/');
    return slash >= 0 && m(p.slice(0, slash), p.slice(slash + 1));
  };
}

const authPrincipal = (a: Attributes): string | undefined =>
  a.auth ? `${a.auth.issuer}/${a.auth.subject}` : undefined;

/** Problems raised since `before` get `prefix` on their field path. */
function prefixProblems(c: RuleCompiler, before: number, prefix: string): void {
  for (let k = before; k < c.problems.length; k++) {
    const pr = c.problems[k]!;
    c.problems[k] = { ...pr, field: `${prefix}${pr.field}` };
  }
}

/** A condition's values and notValues, compiled with one matcher kind. */
type ConditionField = <T>(
  build: (v: string) => Match | string,
  get: (a: Attributes) => T,
  test: (m: Match, value: T) => boolean,
) => Predicate | undefined;

const each = (m: Match, list: readonly string[]) => list.some(m);

/** The condition keys besides headers and claims (Istio's authz/model). */
const CONDITIONS: ReadonlyMap<string, (f: ConditionField, namespace: string) => Predicate | undefined> =
  new Map<string, (f: ConditionField, namespace: string) => Predicate | undefined>([
    ['source.ip', (f) => f(cidr, (a) => a.sourceIp, str)],
    ['remote.ip', (f) => f(cidr, (a) => a.remoteIp, str)],
    ['destination.ip', (f) => f(cidr, (a) => a.destinationIp, str)],
    ['destination.port', (f) => f(portMatch, (a) => String(a.destinationPort), str)],
    ['source.namespace', (f) => f(namespaceMatcher, (a) => a.peerUri, str)],
    ['source.principal', (f) => f(principalMatcher, (a) => a.peerUri, str)],
    [
      'source.serviceAccount',
      (f, ns) =>
        f(
          (v) => serviceAccountMatcher(v, ns),
          (a) => a.peerUri,
          str,
        ),
    ],
    // The inner stream is plaintext after HBONE termination: there is no SNI.
    ['connection.sni', (f) => f(stringMatcher, () => '', str)],
    ['request.auth.principal', (f) => f(requestPrincipalMatch, authPrincipal, str)],
    ['request.auth.audiences', (f) => f(stringMatcher, (a) => a.auth?.audiences ?? [], each)],
    ['request.auth.presenter', (f) => f(stringMatcher, (a) => a.auth?.presenter, str)],
  ]);

/** A `when` condition: its predicate, or undefined when it is dropped. */
function compileCondition(
  c: RuleCompiler,
  i: number,
  cond: NonNullable<AuthzRule['when']>[number],
): Predicate | undefined {
  const field = `when[${i}]`;
  const key = cond.key;
  if (!cond.values?.length && !cond.notValues?.length) {
    c.problems.push({ field, text: `condition ${key} has neither values nor notValues` });
    return undefined;
  }
  const f: ConditionField = (build, get, test) => {
    const before = c.problems.length;
    const p = c.field('values', cond.values, cond.notValues, build, get, test);
    prefixProblems(c, before, `${field}.`);
    return p;
  };
  const header = WHEN_HEADER.exec(key);
  if (header) {
    const name = header[1]!.toLowerCase();
    // `*` is presence (Envoy present_match): an empty value counts.
    return f(
      (v) => (v === '*' ? () => true : stringMatcher(v)),
      (a) => a.header(name),
      str,
    );
  }
  const claim = WHEN_CLAIM.exec(key);
  if (claim) {
    const path = [...claim[1]!.matchAll(/\[([^\]]+)\]/g)].map((m) => m[1]!);
    return f(stringMatcher, (a) => claimValues(a.auth, path), each);
  }
  const known = CONDITIONS.get(key);
  if (known) return known(f, c.namespace);
  if (key.startsWith('experimental.envoy.filters.') || key === 'source.trustDomain')
    c.problems.push({
      field: `${field}.key`,
      text: `condition key ${key} is not supported by this waypoint`,
    });
  else
    c.problems.push({
      field: `${field}.key`,
      text: `unknown condition key ${JSON.stringify(key)}`,
      dropsRule: true,
    });
  return undefined;
}

const NEVER: Predicate = () => false;

/**
 * HTTP-only fields on TCP traffic (l7-semantics.md §2.8): an ALLOW rule that uses one never
 * matches; in any other action the condition is ignored, which broadens the rule.
 */
function httpOnly(
  c: RuleCompiler,
  forTcp: boolean,
  used: boolean,
  compile: () => Predicate | undefined,
): Predicate | undefined {
  if (!forTcp) return compile();
  if (!used) return undefined;
  return c.action === 'ALLOW' ? NEVER : undefined;
}

const present = (values?: readonly string[] | null, notValues?: readonly string[] | null): boolean =>
  (values?.length ?? 0) > 0 || (notValues?.length ?? 0) > 0;

function compileRule(c: RuleCompiler, rule: AuthzRule, forTcp = false): Predicate {
  const from = (rule.from ?? []).map((entry, i) => {
    const before = c.problems.length;
    const p = sourcePredicate(c, entry.source ?? {}, forTcp);
    prefixProblems(c, before, `from[${i}].source.`);
    return p;
  });
  const to = (rule.to ?? []).map((entry, i) => {
    const before = c.problems.length;
    const p = operationPredicate(c, entry.operation ?? {}, forTcp);
    prefixProblems(c, before, `to[${i}].operation.`);
    return p;
  });
  const when = (rule.when ?? []).map((cond, i) =>
    httpOnly(c, forTcp, cond.key.startsWith('request.'), () => compileCondition(c, i, cond)),
  );
  return and([from.length ? or(from) : undefined, to.length ? or(to) : undefined, ...when]);
}

type Source = NonNullable<NonNullable<AuthzRule['from']>[number]['source']>;
type Operation = NonNullable<NonNullable<AuthzRule['to']>[number]['operation']>;

function sourcePredicate(c: RuleCompiler, s: Source, forTcp: boolean): Predicate {
  const ns = c.namespace;
  return and([
    c.field('principals', s.principals, s.notPrincipals, principalMatcher, (a) => a.peerUri, str),
    httpOnly(c, forTcp, present(s.requestPrincipals, s.notRequestPrincipals), () =>
      c.field(
        'requestPrincipals',
        s.requestPrincipals,
        s.notRequestPrincipals,
        requestPrincipalMatch,
        authPrincipal,
        str,
      ),
    ),
    c.field('namespaces', s.namespaces, s.notNamespaces, namespaceMatcher, (a) => a.peerUri, str),
    c.field('ipBlocks', s.ipBlocks, s.notIpBlocks, cidr, (a) => a.sourceIp, str),
    c.field('remoteIpBlocks', s.remoteIpBlocks, s.notRemoteIpBlocks, cidr, (a) => a.remoteIp, str),
    c.field(
      'serviceAccounts',
      s.serviceAccounts,
      s.notServiceAccounts,
      (v) => serviceAccountMatcher(v, ns),
      (a) => a.peerUri,
      str,
    ),
  ]);
}

function operationPredicate(c: RuleCompiler, o: Operation, forTcp: boolean): Predicate {
  return and([
    httpOnly(c, forTcp, present(o.hosts, o.notHosts), () =>
      c.field(
        'hosts',
        o.hosts,
        o.notHosts,
        (v) => stringMatcher(v, true),
        (a) => a.host,
        str,
      ),
    ),
    c.field('ports', o.ports, o.notPorts, portMatch, (a) => String(a.destinationPort), str),
    httpOnly(c, forTcp, present(o.methods, o.notMethods), () =>
      c.field('methods', o.methods, o.notMethods, stringMatcher, (a) => a.method, str),
    ),
    httpOnly(c, forTcp, present(o.paths, o.notPaths), () =>
      c.field('paths', o.paths, o.notPaths, pathMatcher, (a) => a.path, str),
    ),
  ]);
}

/** Go's strconv.ParseBool, as istiod reads the dry-run annotation. */
function parseBool(v: string): boolean | undefined {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(v)) return false;
  return undefined;
}

/**
 * `providers`: the ext_authz provider names the mesh config defines; a CUSTOM policy naming another
 * is reported (its matching requests are denied, as Istio does for a missing provider).
 */
export function compilePolicy(
  r: Policy,
  messages: ConfigMessage[],
  providers: ReadonlySet<string> = new Set(),
): CompiledPolicy {
  const spec = r.spec.spec ?? {};
  const action: Action = spec.action ?? 'ALLOW';
  const warn = (field: string, text: string) => messages.push(policyWarning(r, field, text));
  let dryRun = false;
  const annotation = r.spec.metadata.annotations?.[DRY_RUN];
  if (annotation !== undefined) {
    const b = parseBool(annotation);
    if (b === undefined)
      warn(`metadata.annotations["${DRY_RUN}"]`, `not a boolean (${annotation}); treated as false`);
    else dryRun = b;
  }
  const rules: CompiledRule[] = [];
  (spec.rules ?? []).forEach((rule, index) => {
    const c = new RuleCompiler(action, r.namespace);
    const match = compileRule(c, rule);
    // The TCP form is compiled apart; its problems are the HTTP form's (a subset), already reported.
    const matchTcp = compileRule(new RuleCompiler(action, r.namespace), rule, true);
    const drop = c.problems.some((p) => p.dropsRule) || (action === 'ALLOW' && c.problems.length > 0);
    for (const p of c.problems) {
      const effect = drop
        ? 'rule dropped'
        : 'value ignored (the rule matches more, as Istio does for non-ALLOW actions)';
      warn(`spec.rules[${index}].${p.field}`, `${p.text}; ${effect}`);
    }
    if (!drop) rules.push({ index, match, matchTcp });
  });
  if (action === 'CUSTOM' && !providers.has(spec.provider?.name ?? '')) {
    warn(
      'spec.provider',
      `ext_authz provider ${JSON.stringify(spec.provider?.name ?? '')} is not defined in the mesh config's extensionProviders (or its service is not resolvable); requests matching this policy are denied (as Istio does for a missing provider)`,
    );
  }
  return {
    namespace: r.namespace,
    name: r.name,
    action,
    dryRun,
    provider: spec.provider?.name ?? undefined,
    rules,
  };
}

function add(set: PolicySet, p: CompiledPolicy): PolicySet {
  const key = p.action.toLowerCase() as 'allow' | 'deny' | 'audit' | 'custom';
  return { ...set, [key]: [...set[key], p] };
}

/**
 * The compiler with the mesh config's ext_authz providers (resolved to addresses per snapshot). A
 * function is read at every compile, so a reloaded mesh config takes effect on the next snapshot.
 */
export function compileAuthzWith(
  extensionProviders: readonly ExtensionProvider[] | (() => readonly ExtensionProvider[]),
): FilterCompiler {
  const current = typeof extensionProviders === 'function' ? extensionProviders : () => extensionProviders;
  return (resources, base) => compile(resources, base, current());
}

/** The compiler without a mesh config: every CUSTOM provider is missing. */
export const compileAuthz: FilterCompiler = compileAuthzWith([]);

/**
 * A provider's `service` to the address Envoy would dial: an IP as is, a
 * `name.namespace.svc.<clusterDomain>` FQDN to that Service's ClusterIP.
 */
function resolveProvider(
  p: ExtensionProvider,
  resources: readonly Resource[],
): { ip: string } | { why: string } {
  const host = p.service.includes('/') ? p.service.slice(p.service.indexOf('/') + 1) : p.service;
  if (isIP(host)) return { ip: host };
  const [name, namespace] = host.split('.');
  const svc = resourcesOf<Service>(resources, '', 'Service').find(
    (s) => s.namespace === namespace && s.name === name,
  );
  if (!svc) return { why: `Service ${namespace}/${name} not found` };
  const ip = svc.spec.spec?.clusterIP ?? svc.spec.spec?.clusterIPs?.[0];
  if (!ip || !isIP(ip)) return { why: `Service ${namespace}/${name} has no ClusterIP` };
  return { ip };
}

const compile = (
  resources: readonly Resource[],
  base: Omit<Snapshot, 'filters'>,
  extensionProviders: readonly ExtensionProvider[],
): { config: AuthzConfig; messages: ConfigMessage[] } => {
  const messages: ConfigMessage[] = [];
  const providers = resolveProviders(extensionProviders, resources, messages);
  const names = new Set(providers.keys());
  let waypoint: PolicySet = EMPTY_SET;
  const perService = new Map<string, CompiledPolicy[]>();
  let count = 0;
  for (const r of sortedPolicies(resources)) {
    const targets = policyTargets(r, base, messages);
    if (!targets) continue;
    const compiled = compilePolicy(r, messages, names);
    const provider = compiled.action === 'CUSTOM' ? providers.get(compiled.provider ?? '') : undefined;
    if (provider?.provider.kind === 'http') warnHttpProviderOnTcp(r, provider, targets, base, messages);
    count++;
    if (targets.waypoint) waypoint = add(waypoint, compiled);
    else
      for (const key of targets.services) {
        const list = perService.get(key) ?? [];
        list.push(compiled);
        perService.set(key, list);
      }
  }
  const config: AuthzConfig = {
    waypoint,
    services: servicePolicySets(base, waypoint, perService),
    policyCount: count,
    providers,
  };
  return { config, messages };
};

function sortedPolicies(resources: readonly Resource[]): Policy[] {
  return resourcesOf<AuthorizationPolicy>(resources, 'security.istio.io', 'AuthorizationPolicy').sort(
    (a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name),
  );
}

/** The mesh config's providers whose service resolves to an address; the others are warned about. */
function resolveProviders(
  extensionProviders: readonly ExtensionProvider[],
  resources: readonly Resource[],
  messages: ConfigMessage[],
): Map<string, ResolvedProvider> {
  const providers = new Map<string, ResolvedProvider>();
  for (const p of extensionProviders) {
    const r = resolveProvider(p, resources);
    if ('ip' in r) providers.set(p.name, { provider: p, ip: r.ip });
    else
      messages.push({
        severity: 'warning',
        message: `mesh config: extensionProviders ${p.name}: service ${p.service}: ${r.why}; CUSTOM policies naming it deny the requests they match`,
      });
  }
  return providers;
}

/** Where a policy applies at this waypoint: the whole waypoint, or some of its Services. */
interface PolicyTargets {
  readonly waypoint: boolean;
  readonly services: ReadonlySet<string>;
}

/** The policy's targets here; undefined (with a warning where useful) when it applies to none. */
function policyTargets(
  r: Policy,
  base: Omit<Snapshot, 'filters'>,
  messages: ConfigMessage[],
): PolicyTargets | undefined {
  const spec = r.spec.spec ?? {};
  const refs = [...(spec.targetRef ? [spec.targetRef] : []), ...(spec.targetRefs ?? [])];
  if (refs.length === 0) {
    const field = spec.selector ? 'spec.selector' : 'spec';
    const what = spec.selector ? 'selector' : 'namespace-wide';
    messages.push(
      policyWarning(r, field, `${what} policies are enforced by ztunnel, not by the waypoint; ignored here`),
    );
    return undefined;
  }
  let waypoint = false;
  const services = new Set<string>();
  refs.forEach((ref, i) => {
    const { target, why } = policyTarget(r.namespace, ref, base.gateway.ref);
    if (why) {
      const field =
        spec.targetRef && i === 0 ? 'spec.targetRef' : `spec.targetRefs[${spec.targetRef ? i - 1 : i}]`;
      messages.push(policyWarning(r, field, `${why}; ignored`));
    }
    if (target?.kind === 'waypoint') waypoint = true;
    else if (target?.kind === 'service') services.add(target.key);
  });
  return waypoint || services.size > 0 ? { waypoint, services } : undefined;
}

/** Istio's network ext_authz takes gRPC providers only: on TCP the policy's matches deny. */
function warnHttpProviderOnTcp(
  r: Policy,
  provider: ResolvedProvider,
  targets: PolicyTargets,
  base: Omit<Snapshot, 'filters'>,
  messages: ConfigMessage[],
): void {
  const ports = [...base.services.values()]
    .filter(
      (b) =>
        (b.protocol === 'tcp' || b.protocol === 'tls') &&
        (targets.waypoint || targets.services.has(`${b.service.namespace}/${b.service.name}`)),
    )
    .map((b) => `${b.service.namespace}/${b.service.name}:${b.port}`);
  if (ports.length === 0) return;
  messages.push(
    policyWarning(
      r,
      'spec.provider',
      `ext_authz provider ${JSON.stringify(provider.provider.name)} is HTTP, and TCP connections can only be checked by a gRPC provider (Envoy's network ext_authz); on the TCP ports ${ports.join(', ')} the connections this policy matches are denied`,
    ),
  );
}

/** Each bound Service with policies of its own: the waypoint's set plus its own. */
function servicePolicySets(
  base: Omit<Snapshot, 'filters'>,
  waypoint: PolicySet,
  perService: ReadonlyMap<string, readonly CompiledPolicy[]>,
): Map<string, PolicySet> {
  const services = new Map<string, PolicySet>();
  for (const b of base.services.values()) {
    const key = `${b.service.namespace}/${b.service.name}`;
    if (services.has(key)) continue;
    let set = waypoint;
    for (const p of perService.get(key) ?? []) set = add(set, p);
    if (set !== waypoint) services.set(key, set);
  }
  return services;
}

function policyWarning(r: Policy, field: string, text: string): ConfigMessage {
  return {
    severity: 'warning',
    message: `${r.origin}: ${describe(r)}: ${field}: ${text}`,
    origin: r.origin,
    kind: r.kind,
    namespace: r.namespace,
    name: r.name,
    field,
  };
}
