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
import type { FilterFactory } from '../../src/pipeline/filter.ts';
import { compileRouting } from './compile.ts';
import type { RoutingConfig } from './model.ts';
import { router } from './router.ts';
import { ROUTING } from './select.ts';

registerKind(httpRouteKind);
registerKind(grpcRouteKind);
registerKind(tcpRouteKind);
registerKind(referenceGrantKind);
registerKind(virtualServiceKind);
registerKind(destinationRuleKind);

export { ROUTING };

export const routingFilter: FilterFactory = {
  name: ROUTING,
  compile: compileRouting,
  create(snapshot) {
    const config = snapshot.filters[ROUTING] as RoutingConfig | undefined;
    if (!config || config.ports.size === 0) return undefined;
    return router();
  },
};
