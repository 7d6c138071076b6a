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
import type { OutgoingHttpHeaders } from 'node:http';
import type { FilterCompiler } from '../../config/compile.ts';
import type { Snapshot } from '../../config/model.ts';
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
  create(snapshot: Snapshot): Filter | undefined;
}

/** The compilers of a filter list, by filter name, for the configuration source. */
export function filterCompilers(factories: readonly FilterFactory[]): Record<string, FilterCompiler> {
  const out: Record<string, FilterCompiler> = {};
  for (const f of factories) if (f.compile) out[f.name] = f.compile;
  return out;
}
