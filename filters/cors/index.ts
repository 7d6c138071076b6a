// CORS (Envoy's cors filter, as Istio configures it from VirtualService corsPolicy and the Gateway
// API CORS filter; l7-semantics.md §4.4, §4.9). The policy is the matched route's, whatever the
// route does (forward, redirect, direct response). A preflight whose origin is allowed is answered
// here; an actual request with an allowed origin gets the allow/expose headers on its response.
// It must run before authentication and authorization so preflights (which carry no credentials)
// are not denied.
import type { OutgoingHttpHeaders } from 'node:http';
import type { RequestContext } from '../../src/pipeline/context.ts';
import { CONTINUE, type Filter, type FilterFactory, type Verdict } from '../../src/pipeline/filter.ts';
import {
  type CorsPolicy,
  matchesValue,
  ROUTING,
  type RoutingConfig,
  selectedRoute,
} from '../routing/index.ts';

export const CORS = 'cors';

/** The allowed origin of an actual request, remembered for its response. */
const ALLOWED_ORIGIN = Symbol('cors.allowedOrigin');

/** The matched route's CORS policy (every action kind carries one). */
export function routeCors(ctx: RequestContext): CorsPolicy | undefined {
  return selectedRoute(ctx).entry?.action.cors;
}

function header(ctx: RequestContext, name: string): string | undefined {
  const v = ctx.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function originAllowed(policy: CorsPolicy, origin: string): boolean {
  return policy.allowOrigins.some((m) => matchesValue(m, origin));
}

/** The headers of a preflight answered locally. */
export function preflightHeaders(policy: CorsPolicy, origin: string): OutgoingHttpHeaders {
  const h: OutgoingHttpHeaders = { 'access-control-allow-origin': origin };
  if (policy.allowCredentials) h['access-control-allow-credentials'] = 'true';
  if (policy.allowMethods.length > 0) h['access-control-allow-methods'] = policy.allowMethods.join(',');
  if (policy.allowHeaders.length > 0) h['access-control-allow-headers'] = policy.allowHeaders.join(',');
  if (policy.maxAgeSeconds !== undefined) h['access-control-max-age'] = String(policy.maxAgeSeconds);
  return h;
}

export function createCorsFilter(
  policyFor: (ctx: RequestContext) => CorsPolicy | undefined = routeCors,
): Filter {
  return {
    name: CORS,
    onRequestHeaders(ctx): Verdict {
      const origin = header(ctx, 'origin');
      if (!origin) return CONTINUE;
      const policy = policyFor(ctx);
      if (!policy) return CONTINUE;
      const allowed = originAllowed(policy, origin);
      const preflight =
        ctx.method === 'OPTIONS' && header(ctx, 'access-control-request-method') !== undefined;
      if (preflight) {
        if (allowed) {
          ctx.explain.push(`cors: preflight from ${origin} answered`);
          return {
            kind: 'reply',
            reason: 'cors_preflight',
            headers: preflightHeaders(policy, origin),
            detail: origin,
          };
        }
        if (policy.unmatchedPreflights === 'IGNORE') {
          ctx.explain.push(`cors: preflight from ${origin} not allowed; answered without CORS headers`);
          return { kind: 'reply', reason: 'cors_preflight', detail: origin };
        }
        ctx.explain.push(`cors: preflight from ${origin} not allowed; forwarded`);
        return CONTINUE;
      }
      if (allowed) ctx.attributes.set(ALLOWED_ORIGIN, { origin, policy });
      return CONTINUE;
    },
    onResponseHeaders(ctx, head) {
      const a = ctx.attributes.get(ALLOWED_ORIGIN) as { origin: string; policy: CorsPolicy } | undefined;
      if (!a) return;
      head.headers['access-control-allow-origin'] = a.origin;
      if (a.policy.allowCredentials) head.headers['access-control-allow-credentials'] = 'true';
      if (a.policy.exposeHeaders.length > 0)
        head.headers['access-control-expose-headers'] = a.policy.exposeHeaders.join(',');
    },
  };
}

export const corsFilter: FilterFactory = {
  name: CORS,
  create: (snapshot) => {
    const routing = snapshot.filters[ROUTING] as RoutingConfig | undefined;
    return routing && anyCors(routing) ? createCorsFilter() : undefined;
  },
};

/** Whether any route of the snapshot has a CORS policy (otherwise the filter is not built). */
function anyCors(routing: RoutingConfig): boolean {
  for (const port of routing.ports.values()) {
    for (const table of [port.producer, ...port.consumers.values()]) {
      for (const entry of table?.entries ?? []) if (entry.action.cors) return true;
    }
  }
  return false;
}
