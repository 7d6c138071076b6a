// Route selection for one request, done once and remembered on the request: the routing filters,
// CORS, fault injection, rate limits (attachment by HTTPRoute rule) and `explain` all ask here, in
// whatever order they run, and get the same answer. Selection reads the request as it arrived
// (after path normalization), as Envoy's route cache does, before any filter rewrites it.
import type { RequestContext } from '../../src/pipeline/context.ts';
import { matchesRoute, pathOf } from './match.ts';
import type { HttpRouteTable, PortRouting, RouteEntry, RoutingConfig } from './model.ts';
import { portKey } from './model.ts';
import { findEntry } from './route-index.ts';

export const ROUTING = 'routing';

export interface RouteSelection {
  /** The bound Service port's routing; undefined for pod-addressed traffic or an unknown port. */
  readonly port: PortRouting | undefined;
  /** The table in force for this client (consumer routes of its namespace, else producer routes). */
  readonly table: HttpRouteTable | undefined;
  /** The first entry that matched; undefined with a table means 404 route_not_found. */
  readonly entry: RouteEntry | undefined;
}

const SELECTION = Symbol('routing.selection');

export function routingConfig(ctx: RequestContext): RoutingConfig | undefined {
  return ctx.snapshot.filters[ROUTING] as RoutingConfig | undefined;
}

/** The route this request takes (computed on first call, then remembered). */
export function selectedRoute(ctx: RequestContext): RouteSelection {
  const known = ctx.attributes.get(SELECTION) as RouteSelection | undefined;
  if (known) return known;
  const selection = select(ctx);
  ctx.attributes.set(SELECTION, selection);
  return selection;
}

function select(ctx: RequestContext): RouteSelection {
  const config = routingConfig(ctx);
  const b = ctx.tunnel.binding;
  if (!config || b.kind !== 'service') return { port: undefined, table: undefined, entry: undefined };
  const port = config.ports.get(portKey(b.service.namespace, b.service.name, b.port));
  if (!port) return { port: undefined, table: undefined, entry: undefined };
  const table = port.consumers.get(ctx.tunnel.peer.namespace) ?? port.producer;
  if (!table) return { port, table: undefined, entry: undefined };
  const entry = findEntry(table.entries, table.index, pathOf(ctx.path), (e) =>
    matchesRoute(e.match, ctx, b.port),
  );
  return { port, table, entry };
}
