// The filter contract. A Filter is built once per configuration snapshot from that snapshot's
// compiled config (so per-request work only reads frozen data) and is shared by every request on
// the snapshot; per-request state lives in the RequestContext. All hooks are optional.
//
//   request head parsed
//        │
//   onRequestHeaders   (each filter in order; the first `reply` verdict answers locally and stops)
//        │
//   upstream layers    (endpoint pick → HBONE tunnel → HTTP/1.1 or HTTP/2 to the endpoint)
//        │
//   onResponseHeaders  (each filter, reverse order; may change response headers; local replies too)
//        │
//   body streams through with backpressure (filters never see it unless they ask, later)
//        │
//   onComplete         (always, exactly once, even after errors and aborts)
//
// A tunnel carried as opaque TCP has the network phase instead (Envoy's network filters, apart from
// the HTTP ones): onTcpConnection (admit or close), then onTcpRoute (which cluster it goes to).
//
// The engine (src/) never imports a filter: everything it needs from one goes through this file —
// the FilterContext handed to create() (log, the counters a filter reports to), the TCP routing
// phase, the explain hook, and ChainFactories (the mesh config handed to the filters that read it).
// The composition root (src/compose.ts and the CLI commands) is the only importer of filters/.
import type { OutgoingHttpHeaders } from 'node:http';
import type { FilterCompiler } from '../../config/compile.ts';
import type { Snapshot } from '../../config/model.ts';
import type { Logger } from '../observe/logger.ts';
import type { Cluster } from '../upstream/cluster.ts';
import type { Outcome, RequestContext, TunnelInfo } from './context.ts';
import type { Reason } from './reasons.ts';

export type Verdict =
  | { readonly kind: 'continue' }
  | {
      readonly kind: 'reply';
      readonly reason: Reason;
      /** Overrides the reason's status (e.g. an ext_authz server's own status). */
      readonly status?: number;
      readonly body?: string;
      readonly headers?: OutgoingHttpHeaders;
      /** Free text for the access log. */
      readonly detail?: string;
    };

export const CONTINUE: Verdict = Object.freeze({ kind: 'continue' });

export interface ResponseHead {
  status: number;
  headers: OutgoingHttpHeaders;
}

export interface Filter {
  readonly name: string;
  /** Runs after the request head is parsed. Async filters must respect ctx.signal. */
  onRequestHeaders?(ctx: RequestContext): Verdict | Promise<Verdict>;
  /**
   * Runs on the response head before it is sent downstream: the upstream's, or a local reply's (a
   * filter may add headers to either; a local reply's status stays).
   */
  onResponseHeaders?(ctx: RequestContext, head: ResponseHead): void;
  /** Runs once when the exchange is over, however it ended. Must not throw (errors are logged). */
  onComplete?(ctx: RequestContext, outcome: Outcome): void;
  /**
   * Runs once for a tunnel carried as opaque TCP, before any byte goes upstream (Envoy's network
   * filters). A `reply` verdict closes the tunnel; there is no HTTP to answer in. `explain`
   * collects the decisions for the log. May return a Promise (network ext_authz): the tunnel's
   * bytes wait, unread (so HTTP/2 flow control holds the client back), until it resolves; `signal`
   * is aborted if the tunnel closes meanwhile. Return a Verdict directly when no I/O is needed.
   */
  onTcpConnection?(tunnel: TunnelInfo, explain: string[], signal: AbortSignal): Verdict | Promise<Verdict>;
  /**
   * Chooses where an admitted opaque TCP tunnel goes (TCPRoute weights), once per connection. The
   * first filter that returns a route decides; undefined from all: the tunnel's own binding.
   */
  onTcpRoute?(tunnel: TunnelInfo): TcpRoute | undefined;
  /**
   * `explain` (src/explain/explain.ts) asks each filter, after the chain ran over a hypothetical
   * request, to explain its own part; the filter re-reads its configuration, never the live state.
   */
  explain?(run: ExplainRun): FilterExplanation | undefined;
}

/** A TCP routing decision: a cluster, or why the tunnel can go nowhere (it is refused). */
export type TcpRoute = { readonly cluster: Cluster } | { readonly invalid: string };

/** What explain ran: the tunnel, the request (HTTP phase only) and the chain's verdict. */
export interface ExplainRun {
  readonly phase: 'http' | 'tcp';
  readonly tunnel: TunnelInfo;
  /** The request context after the chain ran (absent in the TCP phase). */
  readonly ctx: RequestContext | undefined;
  readonly verdict: Verdict;
}

/** One filter's part of an explain report. */
export interface FilterExplanation {
  /** Keys added to the JSON result (`--json`, POST /debug/explain), in this order. */
  readonly fields: Readonly<Record<string, unknown>>;
  /** The same for the text report: lines, printed as a paragraph of their own. */
  readonly text: readonly string[];
}

/**
 * A counter family a filter owns: the filter names it, says what it counts and which labels it has
 * (values from the configuration or a closed set: bounded). `zeros`: label sets exported at 0 from
 * the start, so a dashboard sees the series before the first event.
 */
export interface CounterSpec {
  readonly name: string;
  readonly help: string;
  readonly labels: readonly string[];
  readonly zeros?: ReadonlyArray<readonly string[]>;
}

/** One declared family: inc() takes one value per label, in the spec's order. */
export interface FilterCounter {
  inc(...labelValues: string[]): void;
}

/**
 * Where filters count their decisions (the engine's Prometheus registry). counter() registers the
 * family on first call and returns the same one on every later snapshot's call; the engine knows
 * no filter's counters. `explain` builds its chains with NO_FILTER_METRICS, so it counts nothing.
 */
export interface FilterMetrics {
  counter(spec: CounterSpec): FilterCounter;
}

const NO_COUNTER: FilterCounter = Object.freeze({ inc: () => {} });

export const NO_FILTER_METRICS: FilterMetrics = Object.freeze({ counter: () => NO_COUNTER });

/** What the engine hands every factory when it builds a snapshot's chain. */
export interface FilterContext {
  readonly log: Logger;
  readonly metrics: FilterMetrics;
  /** True in the chains `explain` builds: a filter may keep what its explain hook will need. */
  readonly explaining?: boolean;
}

/**
 * Builds a filter for one snapshot, or returns undefined when the snapshot configures nothing for it
 * (so an unused filter costs nothing per request).
 */
export interface FilterFactory {
  readonly name: string;
  /**
   * Compiles this filter's configuration from the resources, once per snapshot; the result is
   * `snapshot.filters[name]`, which create() reads.
   */
  readonly compile?: FilterCompiler;
  /** The engine always passes `context`; a unit test may leave it out (no counters then). */
  create(snapshot: Snapshot, context?: FilterContext): Filter | undefined;
}

/**
 * A mesh config text checked by the filters that read it (ext_authz providers): a problem, or a
 * commit that applies it from the next compiled snapshot and returns fields for the log line.
 */
export type MeshConfigCheck = { readonly error: string } | { readonly commit: () => Record<string, unknown> };

/**
 * The filters a waypoint runs, as the composition root (src/compose.ts) hands them to the engine:
 * the factories each snapshot's FilterChain (chain.ts) is built from, in order, and what they hold
 * across snapshots.
 */
export interface ChainFactories {
  /** What serves traffic. */
  readonly serving: readonly FilterFactory[];
  /**
   * The same chain for `explain`, with fresh instances of the filters whose state outlives a
   * request (rate-limit buckets, Redis), so that explaining changes nothing a client sees.
   */
  readonly explaining: readonly FilterFactory[];
  /** Checks a mesh config (undefined: none); absent when no filter reads one. */
  readonly meshConfig?: (text: string | undefined) => MeshConfigCheck;
  /** Closes what the filters hold open across snapshots (ext_authz connections, Redis). */
  close(): Promise<void>;
}

/** The compilers of a filter list, by filter name, for the configuration source. */
export function filterCompilers(factories: readonly FilterFactory[]): Record<string, FilterCompiler> {
  const out: Record<string, FilterCompiler> = {};
  for (const f of factories) if (f.compile) out[f.name] = f.compile;
  return out;
}
