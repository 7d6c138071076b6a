// Runs the filters of one snapshot over a request. The only place a filter's exception becomes a
// reply: a throwing filter answers 500 internal_error, logged with the filter's name, and the
// process and the other requests carry on.
import type { Snapshot } from '../../config/model.ts';
import type { Logger } from '../observe/logger.ts';
import type { Outcome, RequestContext, TunnelInfo } from './context.ts';
import {
  CONTINUE,
  type ExplainRun,
  type Filter,
  type FilterContext,
  type FilterExplanation,
  type FilterFactory,
  NO_FILTER_METRICS,
  type ResponseHead,
  type TcpRoute,
  type Verdict,
} from './filter.ts';

const NEVER_ABORTED = new AbortController().signal;

export class FilterChain {
  readonly filters: readonly Filter[];
  readonly #requestFilters: readonly Filter[];
  readonly #responseFilters: readonly Filter[];
  readonly #completeFilters: readonly Filter[];
  readonly #tcpFilters: readonly Filter[];
  readonly #tcpRouteFilters: readonly Filter[];
  readonly #log: Logger;

  constructor(filters: readonly Filter[], log: Logger) {
    this.filters = filters;
    this.#requestFilters = filters.filter((f) => f.onRequestHeaders);
    this.#responseFilters = filters.filter((f) => f.onResponseHeaders).reverse();
    this.#completeFilters = filters.filter((f) => f.onComplete);
    this.#tcpFilters = filters.filter((f) => f.onTcpConnection);
    this.#tcpRouteFilters = filters.filter((f) => f.onTcpRoute);
    this.#log = log;
  }

  /**
   * Builds the chain for a snapshot from the registered factories, in their order; each factory
   * gets `context` (default: `log` and no counters).
   */
  static build(
    factories: readonly FilterFactory[],
    snapshot: Snapshot,
    log: Logger,
    context: FilterContext = { log, metrics: NO_FILTER_METRICS },
  ): FilterChain {
    const filters: Filter[] = [];
    for (const factory of factories) {
      const filter = factory.create(snapshot, context);
      if (filter) filters.push(filter);
    }
    return new FilterChain(filters, log);
  }

  /**
   * Request phase: the first local-reply verdict, or CONTINUE. Never rejects. Synchronous while
   * every filter answers synchronously (no promise per request); a Promise once one does not.
   */
  onRequestHeaders(ctx: RequestContext): Verdict | Promise<Verdict> {
    return this.#requestFrom(0, ctx);
  }

  #requestFrom(start: number, ctx: RequestContext): Verdict | Promise<Verdict> {
    const filters = this.#requestFilters;
    for (let i = start; i < filters.length; i++) {
      const filter = filters[i]!;
      let v: Verdict | Promise<Verdict>;
      try {
        v = filter.onRequestHeaders!(ctx);
      } catch (err) {
        return this.#requestThrew(filter, ctx, err);
      }
      if (v instanceof Promise)
        return v.then(
          (verdict) =>
            verdict.kind === 'reply'
              ? verdict
              : ctx.signal.aborted
                ? CONTINUE
                : this.#requestFrom(i + 1, ctx),
          (err: unknown) => this.#requestThrew(filter, ctx, err),
        );
      if (v.kind === 'reply') return v;
      if (ctx.signal.aborted) return CONTINUE;
    }
    return CONTINUE;
  }

  #requestThrew(filter: Filter, ctx: RequestContext, err: unknown): Verdict {
    this.#log.error('filter threw in onRequestHeaders', {
      filter: filter.name,
      request_id: ctx.id,
      error: String(err),
    });
    return { kind: 'reply', reason: 'internal_error', detail: `filter ${filter.name} threw` };
  }

  /** Response phase; a throwing filter is logged and skipped (the response is already on its way). */
  onResponseHeaders(ctx: RequestContext, head: ResponseHead): void {
    for (const filter of this.#responseFilters) {
      try {
        filter.onResponseHeaders!(ctx, head);
      } catch (err) {
        this.#log.error('filter threw in onResponseHeaders', {
          filter: filter.name,
          request_id: ctx.id,
          error: String(err),
        });
      }
    }
  }

  /**
   * TCP phase: the first `reply` verdict, or CONTINUE. A throwing (or rejecting) filter closes the
   * tunnel. Synchronous while every filter answers synchronously; a Promise once one does not.
   */
  onTcpConnection(
    tunnel: TunnelInfo,
    explain: string[],
    signal: AbortSignal = NEVER_ABORTED,
  ): Verdict | Promise<Verdict> {
    return this.#tcpFrom(0, tunnel, explain, signal);
  }

  #tcpFrom(
    start: number,
    tunnel: TunnelInfo,
    explain: string[],
    signal: AbortSignal,
  ): Verdict | Promise<Verdict> {
    const filters = this.#tcpFilters;
    for (let i = start; i < filters.length; i++) {
      const filter = filters[i]!;
      try {
        const v = filter.onTcpConnection!(tunnel, explain, signal);
        if (v instanceof Promise)
          return v.then(
            (verdict) =>
              verdict.kind === 'reply' || signal.aborted
                ? verdict
                : this.#tcpFrom(i + 1, tunnel, explain, signal),
            (err: unknown) => this.#tcpThrew(filter, err),
          );
        if (v.kind === 'reply') return v;
      } catch (err) {
        return this.#tcpThrew(filter, err);
      }
    }
    return CONTINUE;
  }

  /** TCP routing phase: the first filter's route, or undefined (the tunnel's own binding). */
  tcpRoute(tunnel: TunnelInfo): TcpRoute | undefined {
    for (const filter of this.#tcpRouteFilters) {
      const route = filter.onTcpRoute!(tunnel);
      if (route) return route;
    }
    return undefined;
  }

  /** Each filter's own account of a run, in chain order (`explain`). */
  explanations(run: ExplainRun): FilterExplanation[] {
    const out: FilterExplanation[] = [];
    for (const filter of this.filters) {
      const e = filter.explain?.(run);
      if (e) out.push(e);
    }
    return out;
  }

  #tcpThrew(filter: Filter, err: unknown): Verdict {
    this.#log.error('filter threw in onTcpConnection', { filter: filter.name, error: String(err) });
    return { kind: 'reply', reason: 'internal_error', detail: `filter ${filter.name} threw` };
  }

  onComplete(ctx: RequestContext, outcome: Outcome): void {
    for (const filter of this.#completeFilters) {
      try {
        filter.onComplete!(ctx, outcome);
      } catch (err) {
        this.#log.error('filter threw in onComplete', {
          filter: filter.name,
          request_id: ctx.id,
          error: String(err),
        });
      }
    }
  }
}
