// RequestAuthentication resources → the JWT rules in force for each destination of this waypoint.
// Attachment follows AuthorizationPolicy at a waypoint (l7-semantics.md §2.1, §3): targetRefs to our
// waypoint Gateway, to a bound Service (policy in the Service's namespace), or to GatewayClass
// istio-waypoint from the root namespace. `selector` policies and policies without targetRefs are
// ztunnel's business, not ours: ignored with a warning. The rules of every applicable policy are
// merged and sorted by issuer, as istiod does.

import { type PolicyTarget, policyTarget } from '../../config/compile/policy-target.ts';
import type { FilterCompiler } from '../../config/compile.ts';
import type {
  JwtRuleSpec,
  PolicyTargetRef,
  RequestAuthentication,
} from '../../config/kinds/request-authentication.ts';
import type { ConfigMessage } from '../../config/model.ts';
import { type Resource, resourcesOf } from '../../config/resource.ts';

export const FILTER_NAME = 'jwt-authn';
/** Remote JWKS fetch timeout when the rule sets none (Istio's default). */
export const DEFAULT_JWKS_TIMEOUT_MS = 5_000;

export interface HeaderLocation {
  /** Lower-case header name. */
  readonly name: string;
  /** Value prefix before the token (`Bearer ` for the default Authorization location). */
  readonly prefix: string;
}

export interface ClaimToHeader {
  readonly header: string;
  readonly claim: string;
}

export interface JwtRule {
  /** `namespace/name` of the RequestAuthentication the rule came from. */
  readonly policy: string;
  readonly issuer: string;
  /** Empty: `aud` is not checked. */
  readonly audiences: readonly string[];
  /** Inline JWKS (JSON text). Exactly one of jwks and jwksUri is set (neither: no key verifies). */
  readonly jwks: string | undefined;
  readonly jwksUri: string | undefined;
  readonly timeoutMs: number;
  readonly fromHeaders: readonly HeaderLocation[];
  readonly fromParams: readonly string[];
  readonly fromCookies: readonly string[];
  readonly outputPayloadToHeader: string | undefined;
  readonly forwardOriginalToken: boolean;
  readonly outputClaimToHeaders: readonly ClaimToHeader[];
  /** Claims split on spaces in the claims handed to authorization (`scope`, `permission` always). */
  readonly spaceDelimitedClaims: readonly string[];
}

export interface JwtAuthnConfig {
  /** Rules for traffic addressed to a bound Service, by `namespace/name`. Absent: no rules. */
  readonly services: Readonly<Record<string, readonly JwtRule[]>>;
  /** Rules for workload-addressed traffic (waypoint and GatewayClass policies only). */
  readonly workload: readonly JwtRule[];
}

export const DEFAULT_HEADER: HeaderLocation = { name: 'authorization', prefix: 'Bearer ' };
export const DEFAULT_PARAM = 'access_token';

/** `5s`, `1.5s`, `300ms`, `1m` → milliseconds; undefined when unparsable. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2] === 'ms' ? 1 : m[2] === 's' ? 1_000 : m[2] === 'm' ? 60_000 : 3_600_000;
  return n * unit;
}

function message(
  r: Resource,
  severity: 'error' | 'warning',
  text: string,
  field: string | undefined,
): ConfigMessage {
  return {
    severity,
    message: `${r.origin}: ${r.kind} ${r.namespace}/${r.name}: ${field ? `${field}: ` : ''}${text}`,
    origin: r.origin,
    kind: r.kind,
    namespace: r.namespace,
    name: r.name,
    ...(field ? { field } : {}),
  };
}

export function compileRule(
  r: Resource,
  spec: JwtRuleSpec,
  field: string,
  messages: ConfigMessage[],
): JwtRule {
  const fromHeaders = (spec.fromHeaders ?? []).map((h) => ({
    name: h.name.toLowerCase(),
    prefix: h.prefix ?? '',
  }));
  const fromParams = [...(spec.fromParams ?? [])];
  const fromCookies = [...(spec.fromCookies ?? [])];
  const defaulted = fromHeaders.length === 0 && fromParams.length === 0 && fromCookies.length === 0;
  const timeoutMs = jwksTimeout(r, spec, field, messages);
  const { jwks, jwksUri } = keySource(r, spec, field, messages);
  return {
    policy: `${r.namespace}/${r.name}`,
    issuer: spec.issuer,
    audiences: [...(spec.audiences ?? [])],
    jwks,
    jwksUri,
    timeoutMs,
    fromHeaders: defaulted ? [DEFAULT_HEADER] : fromHeaders,
    fromParams: defaulted ? [DEFAULT_PARAM] : fromParams,
    fromCookies,
    outputPayloadToHeader: spec.outputPayloadToHeader?.toLowerCase() || undefined,
    forwardOriginalToken: spec.forwardOriginalToken ?? false,
    outputClaimToHeaders: (spec.outputClaimToHeaders ?? []).map((c) => ({
      header: c.header.toLowerCase(),
      claim: c.claim,
    })),
    spaceDelimitedClaims: [...(spec.spaceDelimitedClaims ?? [])],
  };
}

function jwksTimeout(r: Resource, spec: JwtRuleSpec, field: string, messages: ConfigMessage[]): number {
  if (!spec.timeout) return DEFAULT_JWKS_TIMEOUT_MS;
  const t = parseDuration(spec.timeout);
  if (t !== undefined && t > 0) return t;
  messages.push(
    message(
      r,
      'warning',
      `unparsable duration ${JSON.stringify(spec.timeout)}; using 5s`,
      `${field}.timeout`,
    ),
  );
  return DEFAULT_JWKS_TIMEOUT_MS;
}

/**
 * The rule's keys: inline `jwks` (an empty set when it is not a key set or neither is given: every
 * token of the issuer fails), else `jwksUri`.
 */
function keySource(
  r: Resource,
  spec: JwtRuleSpec,
  field: string,
  messages: ConfigMessage[],
): { jwks: string | undefined; jwksUri: string | undefined } {
  let jwks = spec.jwks ?? undefined;
  if (jwks !== undefined) {
    try {
      const parsed = JSON.parse(jwks) as { keys?: unknown };
      if (!Array.isArray(parsed?.keys)) throw new Error('no "keys" list');
    } catch (err) {
      const text = `not a JSON Web Key Set (${(err as Error).message}); every token of this issuer fails`;
      messages.push(message(r, 'error', text, `${field}.jwks`));
      jwks = '{"keys":[]}';
    }
  }
  const jwksUri = spec.jwksUri ?? undefined;
  if (jwks === undefined && jwksUri === undefined) {
    messages.push(
      message(r, 'error', 'neither jwks nor jwksUri is set; every token of this issuer fails', field),
    );
  }
  if (jwksUri !== undefined && !/^https?:\/\//i.test(jwksUri)) {
    messages.push(message(r, 'error', 'jwksUri must be an http or https URL', `${field}.jwksUri`));
  }
  return {
    jwks: jwks === undefined && jwksUri === undefined ? '{"keys":[]}' : jwks,
    jwksUri: jwks === undefined ? jwksUri : undefined,
  };
}

/** The targetRef's target, with a warning when it can never attach. */
function targetOf(
  r: Resource,
  ref: PolicyTargetRef,
  field: string,
  gateway: { namespace: string; name: string },
  messages: ConfigMessage[],
): PolicyTarget | undefined {
  const { target, why } = policyTarget(r.namespace, ref, gateway);
  if (why) messages.push(message(r, 'warning', `${why}; ignored`, field));
  return target;
}

function byIssuer(a: JwtRule, b: JwtRule): number {
  return a.issuer < b.issuer ? -1 : a.issuer > b.issuer ? 1 : 0;
}

export const compileJwtAuthn: FilterCompiler = (resources, base) => {
  const messages: ConfigMessage[] = [];
  const waypointRules: JwtRule[] = [];
  const serviceRules = new Map<string, JwtRule[]>();
  const policies = resourcesOf<RequestAuthentication>(
    resources,
    'security.istio.io',
    'RequestAuthentication',
  );
  const sorted = [...policies].sort((a, b) =>
    `${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1,
  );
  for (const r of sorted) {
    const targets = policyTargets(r, base.gateway.ref, messages);
    if (targets.length === 0) continue;
    const rules = (r.spec.spec?.jwtRules ?? []).map((rule, i) =>
      compileRule(r, rule, `spec.jwtRules[${i}]`, messages),
    );
    for (const t of targets) {
      if (t.kind === 'waypoint') waypointRules.push(...rules);
      else serviceRules.set(t.key, [...(serviceRules.get(t.key) ?? []), ...rules]);
    }
  }
  const services: Record<string, JwtRule[]> = {};
  for (const b of base.services.values()) {
    const key = `${b.service.namespace}/${b.service.name}`;
    if (key in services) continue;
    const rules = [...waypointRules, ...(serviceRules.get(key) ?? [])].sort(byIssuer);
    if (rules.length > 0) services[key] = rules;
  }
  const config: JwtAuthnConfig = { services, workload: [...waypointRules].sort(byIssuer) };
  return { config, messages };
};

/** The distinct targets of a policy's targetRefs here; a selector policy is ztunnel's (warned). */
function policyTargets(
  r: Resource<RequestAuthentication>,
  gateway: { namespace: string; name: string },
  messages: ConfigMessage[],
): PolicyTarget[] {
  const spec = r.spec.spec ?? {};
  const refs: Array<[PolicyTargetRef, string]> = [];
  if (spec.targetRef) refs.push([spec.targetRef, 'spec.targetRef']);
  (spec.targetRefs ?? []).forEach((ref, i) => {
    refs.push([ref, `spec.targetRefs[${i}]`]);
  });
  if (refs.length === 0 && spec.selector) {
    messages.push(
      message(
        r,
        'warning',
        'selector policies are not enforced by waypoints (ztunnel/sidecars only); ignored',
        'spec.selector',
      ),
    );
  }
  const seen = new Set<string>();
  const out: PolicyTarget[] = [];
  for (const [ref, field] of refs) {
    const t = targetOf(r, ref, field, gateway, messages);
    const key = t?.kind === 'service' ? t.key : '';
    if (!t || seen.has(key)) continue;
    seen.add(key);
    out.push(t);
  }
  return out;
}
