// The routing filter: HTTPRoute, GRPCRoute, TCPRoute, VirtualService and DestinationRule at the
// waypoint. Registers the kinds, compiles them per snapshot (compile.ts) and routes each request
// (router.ts). With no bound Service, it is not in the chain at all.
import { destinationRuleKind } from '../../config/kinds/destination-rule.ts';
import { grpcRouteKind } from '../../config/kinds/grpc-route.ts';
import { httpRouteKind } from '../../config/kinds/http-route.ts';
import { referenceGrantKind } from '../../config/kinds/reference-grant.ts';
import { registerKind } from '../../config/kinds/registry.ts';
import { tcpRouteKind } from '../../config/kinds/tcp-route.ts';
import { virtualServiceKind } from '../../config/kinds/virtual-service.ts';
import type { Filter, FilterFactory } from '../../src/pipeline/filter.ts';
import { compileRouting } from './compile.ts';
import { type DefaultRetry, withDefaultRetry } from './defaults.ts';
import type { RoutingConfig } from './model.ts';
import { router } from './router.ts';
import { ROUTING } from './select.ts';
import { tcpRoute } from './tcp.ts';

registerKind(httpRouteKind);
registerKind(grpcRouteKind);
registerKind(tcpRouteKind);
registerKind(referenceGrantKind);
registerKind(virtualServiceKind);
registerKind(destinationRuleKind);

// Routing's public surface for the filters that act per route (CORS, fault injection, rate limits,
// authz's explain): the selected route and the per-route policies it carries, as Envoy's filters
// read their per-route config from the route entry. Everything else in this folder is private.
export { matchesValue } from './match.ts';
export type { CorsPolicy, FaultPolicy, RoutingConfig, ValueMatch } from './model.ts';
export { ROUTING, type RouteSelection, routingConfig, selectedRoute } from './select.ts';

/**
 * The router, and the TCP routing phase of opaque tunnels. `defaultRetry` (run --default-retry):
 * what a route without a retry field retries (defaults.ts).
 */
export function routingFactory(opts: { defaultRetry?: DefaultRetry } = {}): FilterFactory {
  const mode = opts.defaultRetry ?? 'istio';
  return {
    name: ROUTING,
    compile: compileRouting,
    create(snapshot) {
      const config = snapshot.filters[ROUTING] as RoutingConfig | undefined;
      if (!config || config.ports.size === 0) return undefined;
      const filter: Filter = { ...router(), onTcpRoute: tcpRoute };
      return mode === 'istio' ? filter : withRetryDefault(filter, withDefaultRetry(mode));
    },
  };
}

/** The router with the target it chose passed through `retryDefault`. */
function withRetryDefault(filter: Filter, retryDefault: ReturnType<typeof withDefaultRetry>): Filter {
  const route = filter.onRequestHeaders!;
  return {
    ...filter,
    onRequestHeaders(ctx) {
      const verdict = route(ctx);
      if (ctx.target) ctx.target = retryDefault(ctx.target);
      return verdict;
    },
  };
}

export const routingFilter: FilterFactory = routingFactory();
