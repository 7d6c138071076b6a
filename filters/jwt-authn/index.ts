// RequestAuthentication at the waypoint (l7-semantics.md §3): finds tokens, verifies them against the
// JWT rules of the request's destination, and hands the principal `ISS/SUB` and claims to
// authorization through setRequestAuth. No token: the request passes without identity. A present
// but invalid token: 401 with jwt_verify_lib's status string; a wrong audience: 403.
import type { OutgoingHttpHeaders } from 'node:http';
import { registerKind } from '../../config/kinds/registry.ts';
import { requestAuthenticationKind } from '../../config/kinds/request-authentication.ts';
import type { Snapshot } from '../../config/model.ts';
import type { RequestContext } from '../../src/pipeline/context.ts';
import { CONTINUE, type Filter, type FilterFactory, type Verdict } from '../../src/pipeline/filter.ts';
import { setRequestAuth } from '../../src/pipeline/request-auth.ts';
import { compileJwtAuthn, FILTER_NAME, type JwtAuthnConfig, type JwtRule } from './config.ts';
import { type ExtractedToken, extractTokens, removeToken } from './extract.ts';
import { JwksCache, type JwksCacheOptions, type KeySet, keySetOf } from './jwks.ts';
import { audiencesOf, JWT_STATUS, type KeySource, type VerifyOutcome, verifyToken } from './verify.ts';

registerKind(requestAuthenticationKind);

export { FILTER_NAME } from './config.ts';

export interface JwtAuthnOptions {
  /** The JWKS cache for jwksUri rules (shared across snapshots). Default: a new cache with `jwks`. */
  readonly cache?: JwksCache;
  readonly jwks?: JwksCacheOptions;
  /** Clock in seconds for exp/nbf. Default: the system clock. */
  readonly nowSeconds?: () => number;
}

/** Claims always split on spaces in the claims authorization sees (Istio). */
const ALWAYS_SPACE_DELIMITED = ['scope', 'permission'];

interface RuleResult {
  readonly rule: JwtRule;
  readonly outcome: VerifyOutcome | undefined;
  readonly token: ExtractedToken | undefined;
}

function claimValue(payload: Readonly<Record<string, unknown>>, path: string): string | undefined {
  let v: unknown = payload;
  if (path in payload) v = payload[path];
  else {
    for (const part of path.split('.')) {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
      v = (v as Record<string, unknown>)[part];
    }
  }
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return undefined;
}

function claimsFor(rule: JwtRule, payload: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const claims: Record<string, unknown> = { ...payload };
  for (const name of [...ALWAYS_SPACE_DELIMITED, ...rule.spaceDelimitedClaims]) {
    const v = claims[name];
    if (typeof v === 'string') claims[name] = v.split(' ').filter((x) => x !== '');
  }
  return claims;
}

function isCorsPreflight(ctx: RequestContext): boolean {
  return (
    ctx.method === 'OPTIONS' &&
    ctx.headers.origin !== undefined &&
    ctx.headers['access-control-request-method'] !== undefined
  );
}

/** `http://HOST/PATH` without the query, as Envoy's buildOriginalUri. */
function realm(ctx: RequestContext): string {
  const q = ctx.path.indexOf('?');
  return `http://${ctx.authority}${q < 0 ? ctx.path : ctx.path.slice(0, q)}`;
}

function rulesFor(config: JwtAuthnConfig, ctx: RequestContext): readonly JwtRule[] | undefined {
  const b = ctx.tunnel.binding;
  if (b.kind === 'service') return config.services[`${b.service.namespace}/${b.service.name}`];
  return config.workload;
}

/** Where a rule's keys come from: its jwksUri through the shared cache, or its inline jwks. */
type SourceOf = (rule: JwtRule) => KeySource;

/** Inline key sets are parsed once per snapshot; a bad one verifies nothing. */
function keySources(cache: JwksCache): SourceOf {
  const inline = new Map<string, KeySet>();
  const inlineSet = (text: string): KeySet => {
    let set = inline.get(text);
    if (!set) {
      try {
        set = keySetOf(text);
      } catch {
        set = keySetOf('{"keys":[]}');
      }
      inline.set(text, set);
    }
    return set;
  };
  return (rule) => {
    const uri = rule.jwksUri;
    if (uri !== undefined) {
      return {
        keys: () => cache.keys(uri, rule.timeoutMs),
        refresh: () => cache.refresh(uri, rule.timeoutMs),
      };
    }
    const set = inlineSet(rule.jwks ?? '{"keys":[]}');
    return { keys: async () => set };
  };
}

/**
 * Envoy verifies the last-found token first and stops at the first good one; when none is good,
 * the answer is the first token's.
 */
async function verifyRule(
  rule: JwtRule,
  ctx: RequestContext,
  nowSec: number,
  sourceOf: SourceOf,
): Promise<RuleResult> {
  const tokens = extractTokens(rule, ctx.headers, ctx.path);
  let last: RuleResult = { rule, outcome: undefined, token: undefined };
  for (let i = tokens.length - 1; i >= 0; i--) {
    const token = tokens[i]!;
    const outcome = await verifyToken(token.token, rule, sourceOf(rule), nowSec);
    last = { rule, outcome, token };
    if (outcome.kind === 'ok') return last;
  }
  return last;
}

async function authenticate(
  config: JwtAuthnConfig,
  ctx: RequestContext,
  now: () => number,
  sourceOf: SourceOf,
): Promise<Verdict> {
  const rules = rulesFor(config, ctx);
  if (!rules || rules.length === 0) return CONTINUE;
  if (isCorsPreflight(ctx)) return CONTINUE;
  // The headers this filter writes come from it alone, never from the client.
  for (const rule of rules) {
    if (rule.outputPayloadToHeader) delete ctx.headers[rule.outputPayloadToHeader];
    for (const c of rule.outputClaimToHeaders) delete ctx.headers[c.header];
  }
  const nowSec = now();
  const results = await Promise.all(rules.map((rule) => verifyRule(rule, ctx, nowSec, sourceOf)));
  const good = results.filter((r) => r.outcome?.kind === 'ok');
  if (good.length > 0) {
    for (const [i, r] of good.entries()) useVerified(ctx, r, i === 0);
    return CONTINUE;
  }
  const failed = results.filter((r) => r.outcome !== undefined);
  if (failed.length === 0) {
    ctx.explain.push('jwt-authn: no token; passing without request identity');
    return CONTINUE;
  }
  return rejection(ctx, failed);
}

/** A verified token's output headers; the first one's principal and claims go to authorization. */
function useVerified(ctx: RequestContext, r: RuleResult, first: boolean): void {
  const outcome = r.outcome as Extract<VerifyOutcome, { kind: 'ok' }>;
  const { payload } = outcome;
  if (r.rule.outputPayloadToHeader) ctx.headers[r.rule.outputPayloadToHeader] = outcome.payloadSegment;
  for (const c of r.rule.outputClaimToHeaders) {
    const v = claimValue(payload, c.claim);
    if (v !== undefined) ctx.headers[c.header] = v;
  }
  if (!r.rule.forwardOriginalToken && r.token) removeToken(ctx.headers, r.token.location);
  if (!first) return;
  const iss = String(payload.iss);
  const sub = typeof payload.sub === 'string' ? payload.sub : '';
  setRequestAuth(ctx, {
    principal: `${iss}/${sub}`,
    issuer: iss,
    subject: sub,
    audiences: audiencesOf(payload),
    presenter: typeof payload.azp === 'string' ? payload.azp : undefined,
    claims: claimsFor(r.rule, payload),
  });
  ctx.explain.push(`jwt-authn: verified ${iss}/${sub} (policy ${r.rule.policy})`);
}

/** Envoy's requires_any keeps the last failure that is not "missing" or "unknown issuer". */
function rejection(ctx: RequestContext, failed: readonly RuleResult[]): Verdict {
  let chosen: VerifyOutcome | undefined;
  for (const r of failed)
    if (r.outcome?.kind === 'error' && r.outcome.code !== 'unknown_issuer') chosen = r.outcome;
  const outcome = (chosen ?? failed[0]!.outcome) as Extract<VerifyOutcome, { kind: 'error' }>;
  const status = outcome.status ?? JWT_STATUS.verificationFails;
  ctx.explain.push(`jwt-authn: rejected: ${status}`);
  const headers: OutgoingHttpHeaders = {
    'www-authenticate': `Bearer realm="${realm(ctx)}", error="invalid_token"`,
  };
  return {
    kind: 'reply',
    reason: outcome.code === 'audience' ? 'jwt_audience_mismatch' : 'jwt_invalid',
    body: status,
    headers,
    detail: `jwt_authn_access_denied{${status.replace(/ /g, '_')}}`,
  };
}

export function jwtAuthnFactory(opts: JwtAuthnOptions = {}): FilterFactory {
  const cache = opts.cache ?? new JwksCache(opts.jwks);
  const now = opts.nowSeconds ?? (() => Math.floor(Date.now() / 1000));
  function create(snapshot: Snapshot): Filter | undefined {
    const config = snapshot.filters[FILTER_NAME] as JwtAuthnConfig | undefined;
    if (!config) return undefined;
    if (config.workload.length === 0 && Object.keys(config.services).length === 0) return undefined;
    const sourceOf = keySources(cache);
    return {
      name: FILTER_NAME,
      onRequestHeaders: (ctx) => authenticate(config, ctx, now, sourceOf),
    };
  }
  return { name: FILTER_NAME, compile: compileJwtAuthn, create };
}

/** The factory in the chain (filters/index.ts). */
export const JWT_AUTHN: FilterFactory = jwtAuthnFactory();
