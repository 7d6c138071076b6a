// The access log, in Istio's default text format (l7-semantics.md §5.8) so existing parsers work;
// %RESPONSE_CODE_DETAILS% carries our reason code, as Envoy puts its details there. By default every
// error and every local reply is logged and successes are not (a busy waypoint's log stays readable);
// `all` logs everything, `off` nothing. A request an enforced AUDIT policy matched is logged in any
// mode but `off`, and its line ends with ` audit=ns[NS]-policy[NAME]-rule[I]`. A retried request's
// line ends with ` attempts=N` (users-and-style.md A.19: which attempt answered).
import type { Writable } from 'node:stream';
import type { Reason } from '../pipeline/reasons.ts';

export type AccessLogMode = 'errors' | 'all' | 'off';

export interface AccessLogEntry {
  readonly start: Date;
  readonly method: string;
  readonly path: string;
  readonly protocol: string;
  readonly status: number;
  readonly reason: Reason;
  /** Envoy's response flags (`-` for none), e.g. `UF,URX`. */
  readonly flags: string;
  readonly detail: string | undefined;
  readonly bytesReceived: number;
  readonly bytesSent: number;
  readonly durationMs: number;
  readonly forwardedFor: string | undefined;
  readonly userAgent: string | undefined;
  readonly requestId: string | undefined;
  readonly authority: string | undefined;
  readonly upstreamHost: string | undefined;
  readonly upstreamCluster: string | undefined;
  readonly downstreamLocal: string;
  readonly downstreamRemote: string;
  readonly route: string | undefined;
  /** The enforced AUDIT rule that matched (`ns[..]-policy[..]-rule[..]`), appended as `audit=...`. */
  readonly audit?: string | undefined;
  /** Upstream attempts made (retries + 1), appended as `attempts=N` when there was a retry. */
  readonly attempts?: number | undefined;
}

const dash = (v: string | number | undefined): string => (v === undefined || v === '' ? '-' : String(v));
const quoted = (v: string | undefined): string =>
  `"${v === undefined || v === '' ? '-' : v.replace(/"/g, '\\"')}"`;

export function formatAccessLog(e: AccessLogEntry): string {
  return (
    `[${e.start.toISOString()}] "${e.method} ${e.path} ${e.protocol}" ${e.status} ${e.flags} ${e.reason} - ` +
    `${quoted(e.detail)} ${e.bytesReceived} ${e.bytesSent} ${Math.round(e.durationMs)} - ` +
    `${quoted(e.forwardedFor)} ${quoted(e.userAgent)} ${quoted(e.requestId)} ${quoted(e.authority)} ` +
    `${quoted(e.upstreamHost)} ${dash(e.upstreamCluster)} - ${e.downstreamLocal} ${e.downstreamRemote} - ${dash(e.route)}` +
    `${e.audit ? ` audit=${e.audit}` : ''}${e.attempts && e.attempts > 1 ? ` attempts=${e.attempts}` : ''}\n`
  );
}

export class AccessLog {
  readonly #mode: AccessLogMode;
  readonly #out: Writable;

  constructor(mode: AccessLogMode, out: Writable = process.stdout) {
    this.#mode = mode;
    this.#out = out;
  }

  /**
   * Cheap check before building an entry. `hinted`: a filter asked for the request to be logged
   * (an AUDIT match, Envoy's access_log_hint): logged in any mode but `off`.
   */
  wants(status: number, reason: Reason, hinted = false): boolean {
    if (this.#mode === 'off') return false;
    if (this.#mode === 'all' || hinted) return true;
    return reason !== 'via_upstream' || status >= 500 || status === 0;
  }

  write(e: AccessLogEntry): void {
    this.#out.write(formatAccessLog(e));
  }
}

export function parseAccessLogMode(v: string | undefined): AccessLogMode {
  if (v === undefined) return 'errors';
  if (v === 'errors' || v === 'all' || v === 'off') return v;
  throw new Error(`--access-log must be errors, all or off (got ${JSON.stringify(v)})`);
}
