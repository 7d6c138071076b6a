// CUSTOM AuthorizationPolicy: Envoy's ext_authz filter as Istio configures it for a waypoint
// (l7-semantics.md §1, §2.2): first in the HTTP chain, before JWT authentication. When a CUSTOM
// rule matches, the policy's provider decides: a deny ends the request (reason ext_authz_denied,
// the provider's status, headers and body); an allow adds the provider's headers and goes on to
// JWT and the DENY/ALLOW evaluation of the authz filter. A provider that fails or times out denies
// with its statusOnError (ext_authz_error) unless it is failOpen. A policy naming a provider the
// mesh config does not define (or whose service does not resolve) denies, as Istio does. On TCP
// (the network phase) a matching CUSTOM rule asks its gRPC provider about the connection.
import type { OutgoingHttpHeaders } from 'node:http';
import type { RequestContext, TunnelInfo } from '../../src/pipeline/context.ts';
import { CONTINUE, type Filter, type FilterFactory, type Verdict } from '../../src/pipeline/filter.ts';
import type { CheckBody, ExtAuthzClients, HeaderMutation } from './ext-authz.ts';
import { AUTHZ, attributes, CUSTOM_DECIDED, customDecidedTcp, setFor, tcpAttributes } from './index.ts';
import type { ExtensionProvider } from './mesh-config.ts';
import { type AuthzConfig, type CompiledPolicy, policyId } from './model.ts';

export const EXT_AUTHZ = 'ext-authz';

const RESPONSE_HEADERS: unique symbol = Symbol('ext-authz.responseHeaders');

function firstCustomMatch(
  custom: readonly CompiledPolicy[],
  ctx: RequestContext,
): { policy: CompiledPolicy; id: string } | undefined {
  // CUSTOM runs before JWT authentication: request.auth.* attributes are not known yet.
  const a = { ...attributes(ctx), auth: undefined };
  for (const p of custom)
    for (const r of p.rules) if (r.match(a)) return { policy: p, id: policyId(p, r.index) };
  return undefined;
}

function applyUpstream(
  ctx: RequestContext,
  upstream: readonly HeaderMutation[],
  remove: readonly string[],
): void {
  const h = ctx.headers as Record<string, string | string[] | undefined>;
  for (const name of remove) {
    if (name.startsWith(':') || name === 'host') continue;
    delete h[name];
  }
  for (const m of upstream) {
    if (m.name.startsWith(':') || m.name === 'host') continue;
    const cur = h[m.name];
    if (m.mode === 'append' && cur !== undefined)
      h[m.name] = `${Array.isArray(cur) ? cur.join(',') : cur},${m.value}`;
    else if (m.mode === 'add-if-absent') {
      if (cur === undefined) h[m.name] = m.value;
    } else if (m.mode === 'overwrite-if-exists') {
      if (cur !== undefined) h[m.name] = m.value;
    } else h[m.name] = m.value;
  }
}

/**
 * CUSTOM on a TCP connection: Envoy's network ext_authz, which Istio configures for gRPC providers
 * only. The first CUSTOM rule whose TCP form matches decides: its gRPC provider is asked about the
 * connection (source, destination, no request); an HTTP provider cannot be asked, so the rule
 * denies (the compiler warns). A deny closes the tunnel without a byte.
 */
function customTcp(
  config: AuthzConfig,
  clients: ExtAuthzClients,
  tunnel: TunnelInfo,
  explain: string[],
  signal: AbortSignal,
): Verdict | Promise<Verdict> {
  const set = setFor(tunnel.binding, config);
  if (!set.custom.length) return CONTINUE;
  customDecidedTcp.add(tunnel);
  const m = firstCustomMatchTcp(set.custom, tcpAttributes(tunnel));
  if (!m) {
    explain.push('authz CUSTOM: no rule matched; ext_authz not called');
    return CONTINUE;
  }
  const { id } = m;
  const name = m.policy.provider ?? '';
  const resolved = config.providers.get(name);
  if (!resolved) {
    explain.push(`authz CUSTOM ${id} matched; ext_authz provider ${name} unavailable: denied`);
    return matchedPolicyDenied(id);
  }
  const p = resolved.provider;
  if (p.kind !== 'grpc') {
    explain.push(
      `authz CUSTOM ${id} matched; ext_authz provider ${name} is HTTP, which cannot check TCP: denied`,
    );
    return matchedPolicyDenied(id);
  }
  return clients.checkTcp(p, resolved.ip, tunnel, signal).then((result): Verdict => {
    if (result.kind === 'error') return providerFailed(p, id, result.why, explain);
    if (result.kind === 'deny') {
      explain.push(`authz CUSTOM ${id}: ext_authz ${name} denied the connection`);
      return { kind: 'reply', reason: 'ext_authz_denied', detail: 'ext_authz_denied' };
    }
    explain.push(`authz CUSTOM ${id}: ext_authz ${name} allowed the connection`);
    return CONTINUE;
  });
}

function firstCustomMatchTcp(
  custom: readonly CompiledPolicy[],
  a: ReturnType<typeof tcpAttributes>,
): { policy: CompiledPolicy; id: string } | undefined {
  for (const p of custom) {
    const r = p.rules.find((r) => r.matchTcp(a));
    if (r) return { policy: p, id: policyId(p, r.index) };
  }
  return undefined;
}

/** A CUSTOM policy matched and its provider cannot be asked: denied, as Istio does. */
function matchedPolicyDenied(id: string): Verdict {
  return { kind: 'reply', reason: 'authz_denied', detail: `rbac_access_denied_matched_policy[${id}]` };
}

/** The provider failed or timed out: allowed when failOpen, else ext_authz_error (`status` on HTTP). */
function providerFailed(
  p: ExtensionProvider,
  id: string,
  why: string,
  explain: string[],
  status?: number,
): Verdict {
  if (p.failOpen) {
    explain.push(`authz CUSTOM ${id}: ext_authz ${p.name} failed (${why}); failOpen: allowed`);
    return CONTINUE;
  }
  explain.push(`authz CUSTOM ${id}: ext_authz ${p.name} failed (${why}): denied`);
  return {
    kind: 'reply',
    reason: 'ext_authz_error',
    ...(status === undefined ? {} : { status }),
    detail: 'ext_authz_error',
  };
}

/** CUSTOM on an HTTP request: the first matching rule's provider decides. */
async function customHttp(
  config: AuthzConfig,
  clients: ExtAuthzClients,
  ctx: RequestContext,
): Promise<Verdict> {
  // CUSTOM rules match the normalized path (filters/path-normalization runs first).
  const set = setFor(ctx.tunnel.binding, config);
  if (!set.custom.length) return CONTINUE;
  ctx.attributes.set(CUSTOM_DECIDED, true);
  const m = firstCustomMatch(set.custom, ctx);
  if (!m) {
    ctx.explain.push('authz CUSTOM: no rule matched; ext_authz not called');
    return CONTINUE;
  }
  const name = m.policy.provider ?? '';
  const resolved = config.providers.get(name);
  if (!resolved) {
    ctx.explain.push(`authz CUSTOM ${m.id} matched; ext_authz provider ${name} unavailable: denied`);
    return matchedPolicyDenied(m.id);
  }
  const withBody = await checkBody(ctx, resolved.provider, m.id);
  if (withBody && 'kind' in withBody) return withBody;
  const result = await clients.check(resolved, ctx, withBody);
  if (ctx.signal.aborted) return CONTINUE; // the engine reports the downstream reset
  if (result.kind === 'error')
    return providerFailed(resolved.provider, m.id, result.why, ctx.explain, resolved.provider.statusOnError);
  if (result.kind === 'deny') {
    ctx.explain.push(`authz CUSTOM ${m.id}: ext_authz ${name} denied with ${result.status}`);
    const { status, body, headers } = result;
    return { kind: 'reply', reason: 'ext_authz_denied', status, body, headers, detail: 'ext_authz_denied' };
  }
  ctx.explain.push(`authz CUSTOM ${m.id}: ext_authz ${name} allowed`);
  applyUpstream(ctx, result.upstream, result.remove);
  if (result.downstream.length) ctx.attributes.set(RESPONSE_HEADERS, result.downstream);
  return CONTINUE;
}

/**
 * The body to send with the check, when the provider wants it (Envoy's with_request_body): up to
 * maxRequestBytes; a longer body is cut there when allowPartialMessage, else answered 413. The
 * whole body still goes upstream. CONTINUE when the client's body failed or the request is gone
 * (the engine reports the downstream reset).
 */
async function checkBody(
  ctx: RequestContext,
  p: ExtensionProvider,
  id: string,
): Promise<CheckBody | Verdict | undefined> {
  const withBody = p.includeRequestBodyInCheck;
  if (!withBody) return undefined;
  let prefix: Awaited<ReturnType<RequestContext['readBody']>>;
  try {
    prefix = await ctx.readBody(withBody.maxRequestBytes);
  } catch {
    return CONTINUE;
  }
  if (ctx.signal.aborted) return CONTINUE;
  if (!prefix.complete && !withBody.allowPartialMessage) {
    ctx.explain.push(
      `authz CUSTOM ${id}: request body over ext_authz ${p.name}'s maxRequestBytes (${withBody.maxRequestBytes}): denied`,
    );
    return { kind: 'reply', reason: 'request_body_too_large', detail: 'request_payload_too_large' };
  }
  return { bytes: prefix.bytes, partial: !prefix.complete, packAsBytes: withBody.packAsBytes };
}

/** The provider's headers for the client on an allow (headersToDownstreamOnAllow). */
function applyDownstream(h: OutgoingHttpHeaders, add: readonly HeaderMutation[]): void {
  for (const m of add) {
    const cur = h[m.name];
    if (m.mode === 'append' && cur !== undefined)
      h[m.name] = Array.isArray(cur) ? [...cur, m.value] : [String(cur), m.value];
    else if (m.mode === 'add-if-absent') {
      if (cur === undefined) h[m.name] = m.value;
    } else if (m.mode === 'overwrite-if-exists') {
      if (cur !== undefined) h[m.name] = m.value;
    } else h[m.name] = m.value;
  }
}

export function createExtAuthzFilter(config: AuthzConfig, clients: ExtAuthzClients): Filter {
  return {
    name: EXT_AUTHZ,
    onTcpConnection(tunnel, explain, signal) {
      return customTcp(config, clients, tunnel, explain, signal);
    },
    onRequestHeaders(ctx): Promise<Verdict> {
      return customHttp(config, clients, ctx);
    },
    onResponseHeaders(ctx, head): void {
      const add = ctx.attributes.get(RESPONSE_HEADERS) as readonly HeaderMutation[] | undefined;
      if (add) applyDownstream(head.headers as OutgoingHttpHeaders, add);
    },
  };
}

/**
 * The ext_authz filter. It reads the authz filter's compiled configuration (policies and resolved
 * providers), so it costs nothing on a snapshot without CUSTOM policies.
 */
export function extAuthzFilter(clients: ExtAuthzClients): FilterFactory {
  return {
    name: EXT_AUTHZ,
    create(snapshot) {
      const config = snapshot.filters[AUTHZ] as AuthzConfig | undefined;
      if (!config || config.policyCount === 0) return undefined;
      const any =
        config.waypoint.custom.length > 0 || [...config.services.values()].some((s) => s.custom.length > 0);
      return any ? createExtAuthzFilter(config, clients) : undefined;
    },
  };
}
