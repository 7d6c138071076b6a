// The router: the last filter, as in Envoy. Acts on the selected route (select.ts): answers
// redirects, direct responses, 404 for no match, 500 for a broken rule or no usable backend;
// otherwise picks a weighted backend, applies the rule's and the backend's header operations and
// rewrites, and sets ctx.target for the upstream layers (cluster, timeouts, retries, mirrors).
import type { RequestContext } from '../../src/pipeline/context.ts';
import { CONTINUE, type Filter, type ResponseHead, type Verdict } from '../../src/pipeline/filter.ts';
import { applyHeaderOps, redirectLocation, rewritePath } from './actions.ts';
import type { ForwardAction, HeaderOps, PortRouting } from './model.ts';
import { selectedRoute } from './select.ts';

export const ROUTER = 'router';

/** Response header operations still to apply when the response head arrives. */
const RESPONSE_OPS = Symbol('router.responseOps');

export function router(random: () => number = Math.random): Filter {
  return {
    name: ROUTER,
    onRequestHeaders: (ctx) => route(ctx, random),
    onResponseHeaders(ctx, head: ResponseHead) {
      const ops = ctx.attributes.get(RESPONSE_OPS) as readonly HeaderOps[] | undefined;
      if (ops) for (const o of ops) applyHeaderOps(head.headers, o);
    },
  };
}

function route(ctx: RequestContext, random: () => number): Verdict {
  const sel = selectedRoute(ctx);
  // Pod-addressed traffic and ports routing knows nothing of go to their own binding.
  if (!sel.port) return CONTINUE;
  if (!sel.table) {
    useDefaultRoute(ctx, sel.port);
    return CONTINUE;
  }
  const entry = sel.entry;
  if (!entry) {
    ctx.explain.push(`no route of ${sel.table.source} matched: 404`);
    return { kind: 'reply', reason: 'route_not_found', detail: 'route_not_found' };
  }
  const name = entry.ref.display;
  ctx.explain.push(`route ${entry.ref.kind} ${name} matched`);
  const action = entry.action;
  switch (action.kind) {
    case 'redirect': {
      const b = ctx.tunnel.binding;
      const location = redirectLocation(action, {
        authority: ctx.authority,
        pathAndQuery: ctx.path,
        servicePort: b.kind === 'service' ? b.port : ctx.tunnel.destination.port,
      });
      const headers: Record<string, string> = { location };
      applyHeaderOps(headers, action.responseHeaders);
      return { kind: 'reply', reason: 'route_redirect', status: action.status, headers, detail: name };
    }
    case 'direct': {
      const headers: Record<string, string> = {};
      applyHeaderOps(headers, action.responseHeaders);
      return {
        kind: 'reply',
        reason: 'route_direct_response',
        status: action.status,
        body: action.body,
        headers,
        detail: name,
      };
    }
    case 'invalid':
      ctx.explain.push(`the rule could not be compiled (${action.why}): 500`);
      return { kind: 'reply', reason: 'route_rule_invalid', detail: `${name}: ${action.why}` };
    case 'forward':
      return forward(ctx, action, name, random);
  }
}

function forward(
  ctx: RequestContext,
  action: ForwardAction,
  routeName: string,
  random: () => number,
): Verdict {
  const i = pickBackend(action, random);
  if (i === undefined) {
    ctx.explain.push('the route has no backend with weight above 0: 500');
    return { kind: 'reply', reason: 'route_no_backend', detail: routeName };
  }
  const backend = action.backends[i]!;
  const target = action.targets[i];
  if (!target) {
    ctx.explain.push(`backend does not resolve (${backend.invalid}): 500`);
    return {
      kind: 'reply',
      reason: 'cluster_not_found',
      status: backend.invalidStatus,
      detail: backend.invalid,
    };
  }
  applyHeaderOps(ctx.headers, action.requestHeaders);
  applyHeaderOps(ctx.headers, backend.requestHeaders);
  const rw = action.rewrite;
  if (rw?.path) {
    const rewritten = rewritePath(rw.path, ctx.path);
    if (rewritten !== ctx.path) {
      // Envoy tells the upstream what the client asked for.
      ctx.headers['x-envoy-original-path'] = ctx.path;
      ctx.explain.push(`path rewritten to ${rewritten}`);
      ctx.path = rewritten;
    }
  }
  if (rw?.authority) setAuthority(ctx, rw.authority);
  const responseOps = action.responseOps[i]!;
  if (responseOps.length > 0) ctx.attributes.set(RESPONSE_OPS, responseOps);
  ctx.target = target;
  ctx.explain.push(
    action.backends.length > 1
      ? `backends: ${action.shares}; this request: ${target.cluster.name}`
      : `to ${target.cluster.name}`,
  );
  return CONTINUE;
}

/**
 * Weighted random choice, proportional to weight (weights of 0 were dropped at compile time): the
 * chosen backend's position, undefined when there is none.
 */
export function pickBackend(
  action: Pick<ForwardAction, 'backends' | 'totalWeight'>,
  random: () => number,
): number | undefined {
  const list = action.backends;
  if (list.length <= 1) return list.length === 1 ? 0 : undefined;
  let r = random() * action.totalWeight;
  for (let i = 0; i < list.length; i++) {
    r -= list[i]!.weight;
    if (r < 0) return i;
  }
  return list.length - 1;
}

function useDefaultRoute(ctx: RequestContext, port: PortRouting): void {
  // Istio installs no default retry on gRPC ports.
  ctx.target = ctx.grpc ? port.defaultGrpcTarget : port.defaultTarget;
}

/** An authority rewrite: `host` upstream for HTTP/1.1, `:authority` for HTTP/2. */
function setAuthority(ctx: RequestContext, authority: string): void {
  delete ctx.headers[':authority'];
  ctx.headers.host = authority;
  ctx.explain.push(`authority rewritten to ${authority}`);
}
