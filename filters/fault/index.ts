// Fault injection (VirtualService `fault`, l7-semantics.md §5.6): a delay, then an abort, each
// applied to a share of the requests of the matched route and decided independently. It runs
// before routing hands the request upstream, so an abort is never retried and never counts toward
// outlier detection. The fault comes from the route selection (routing's selectedRoute), so it
// follows the same match the router uses.
import type { RequestContext } from '../../src/pipeline/context.ts';
import { CONTINUE, type Filter, type FilterFactory, type Verdict } from '../../src/pipeline/filter.ts';
import { noteFlag } from '../../src/pipeline/response-flags.ts';
import { type FaultPolicy, ROUTING, type RoutingConfig, selectedRoute } from '../routing/index.ts';

export const FAULT = 'fault';

/** Set on the request when a delay was injected (its length in ms): the access log's flag DI. */
export const FAULT_DELAYED = Symbol('fault.delayed');

export function faultDelayMs(ctx: RequestContext): number | undefined {
  return ctx.attributes.get(FAULT_DELAYED) as number | undefined;
}

export interface FaultOptions {
  /** [0, 1); one draw for the delay, one for the abort. */
  readonly random?: () => number;
  /** Resolves after `ms`, or early when `signal` aborts (the client went away). */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** The fault in force for the request; by default the matched route's. */
  readonly policyFor?: (ctx: RequestContext) => FaultPolicy | undefined;
}

/** The matched route's fault (forward and direct-response actions carry one). */
export function routeFault(ctx: RequestContext): FaultPolicy | undefined {
  const action = selectedRoute(ctx).entry?.action;
  return action && action.kind !== 'redirect' ? action.fault : undefined;
}

/** Whether a fraction (0-1) of requests includes this one: exact at 0 and 1. */
export function chosen(fraction: number, random: () => number): boolean {
  return fraction >= 1 || (fraction > 0 && random() < fraction);
}

export function createFaultFilter(opts: FaultOptions = {}): Filter {
  const random = opts.random ?? Math.random;
  const sleep = opts.sleep ?? delayUnlessAborted;
  const policyFor = opts.policyFor ?? routeFault;
  return {
    name: FAULT,
    async onRequestHeaders(ctx): Promise<Verdict> {
      const fault = policyFor(ctx);
      if (!fault) return CONTINUE;
      const { delay, abort } = fault;
      if (delay && delay.ms > 0 && chosen(delay.fraction, random)) {
        ctx.attributes.set(FAULT_DELAYED, delay.ms);
        noteFlag(ctx, 'DI');
        ctx.explain.push(`fault: delayed ${delay.ms} ms`);
        await sleep(delay.ms, ctx.signal);
        if (ctx.signal.aborted) return CONTINUE; // the client left; the engine ends it as a reset
      }
      if (abort && chosen(abort.fraction, random)) {
        ctx.explain.push(
          `fault: aborted with ${ctx.grpc && abort.grpcStatus !== undefined ? `grpc-status ${abort.grpcStatus}` : `status ${abort.httpStatus}`}`,
        );
        return {
          kind: 'reply',
          reason: 'fault_abort',
          status: abort.httpStatus,
          // The engine's gRPC local reply takes a grpc-status header as given (src/proxy/downstream.ts).
          headers:
            ctx.grpc && abort.grpcStatus !== undefined
              ? { 'grpc-status': String(abort.grpcStatus) }
              : undefined,
          detail: 'fault_filter_abort',
        };
      }
      return CONTINUE;
    },
  };
}

export function faultFilterFactory(opts: FaultOptions = {}): FilterFactory {
  return {
    name: FAULT,
    create: (snapshot) => {
      if (opts.policyFor) return createFaultFilter(opts);
      const routing = snapshot.filters[ROUTING] as RoutingConfig | undefined;
      return routing && anyFault(routing) ? createFaultFilter(opts) : undefined;
    },
  };
}

export const faultFilter: FilterFactory = faultFilterFactory();

/** Whether any route of the snapshot injects a fault (otherwise the filter is not built). */
function anyFault(routing: RoutingConfig): boolean {
  for (const port of routing.ports.values()) {
    const tables = [port.producer, ...port.consumers.values()];
    for (const table of tables) {
      for (const entry of table?.entries ?? []) {
        if (entry.action.kind !== 'redirect' && entry.action.fault) return true;
      }
    }
  }
  return false;
}

function delayUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
