// The access log, in Istio's default text format field by field (pilot/pkg/model telemetry_logging.go
// EnvoyTextLogFormat, l7-semantics.md §5.8) so users' parsers work, or Istio's default JSON keys with
// mesh config `accessLogEncoding: JSON` (`--access-log-encoding json`). %RESPONSE_CODE_DETAILS% holds
// Envoy's strings (response-code-details.ts); the waypoint's own reason code, its detail, the
// enforced AUDIT rule and the attempts of a retried request are extra keys of the JSON line (the text
// line has no room for them without breaking the format). By default every error and every local
// reply is logged and successes are not; `all` logs everything, `off` nothing; a request an
// enforced AUDIT policy matched is logged in any mode but `off`. TCP connections get a line each, as
// Envoy's TCP proxy logs them (`"- - -"`, code 0).
import type { Writable } from 'node:stream';
import type { AccessLogChoice } from '../../config/compile/access-logging.ts';
import type { Snapshot } from '../../config/model.ts';
import type { Reason } from '../pipeline/reasons.ts';
import { responseCodeDetails, transportFailureReason } from './response-code-details.ts';

export type AccessLogMode = 'errors' | 'all' | 'off';
export type AccessLogEncoding = 'text' | 'json';

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
  /** The enforced AUDIT rule that matched (`ns[..]-policy[..]-rule[..]`): JSON key `audit`. */
  readonly audit?: string | undefined;
  /** Upstream attempts made (retries + 1): JSON key `attempts`, when there was a retry. */
  readonly attempts?: number | undefined;
}

const dash = (v: string | number | undefined): string => (v === undefined || v === '' ? '-' : String(v));
const quoted = (v: string | undefined): string =>
  `"${v === undefined || v === '' ? '-' : v.replace(/"/g, '\\"')}"`;

/** Istio's default fields, by their JSON names, in the text format's order (the fields formatAccessLog writes). */
function fields(e: AccessLogEntry): Record<string, string | number | undefined> {
  return {
    start_time: e.start.toISOString(),
    method: e.method,
    path: e.path,
    protocol: e.protocol,
    response_code: e.status,
    response_flags: e.flags,
    // Envoy's TCP proxy sets no response details (its lines have protocol `-`).
    response_code_details: e.protocol === '-' ? undefined : responseCodeDetails(e.reason, e.detail),
    connection_termination_details: undefined,
    upstream_transport_failure_reason: transportFailureReason(e.reason, e.detail),
    bytes_received: e.bytesReceived,
    bytes_sent: e.bytesSent,
    duration: Math.round(e.durationMs),
    upstream_service_time: undefined,
    x_forwarded_for: e.forwardedFor,
    user_agent: e.userAgent,
    request_id: e.requestId,
    authority: e.authority,
    upstream_host: e.upstreamHost,
    upstream_cluster: e.upstreamCluster,
    upstream_local_address: undefined,
    downstream_local_address: e.downstreamLocal,
    downstream_remote_address: e.downstreamRemote,
    requested_server_name: undefined,
    route_name: e.route,
  };
}

/** The text line, written straight from the entry (no record of fields built on the way). */
export function formatAccessLog(e: AccessLogEntry): string {
  const details = e.protocol === '-' ? undefined : responseCodeDetails(e.reason, e.detail);
  return (
    `[${e.start.toISOString()}] "${e.method} ${e.path} ${e.protocol}" ${e.status} ${dash(e.flags)} ` +
    `${dash(details)} - ${quoted(transportFailureReason(e.reason, e.detail))} ${e.bytesReceived} ${e.bytesSent} ` +
    `${Math.round(e.durationMs)} - ${quoted(e.forwardedFor)} ${quoted(e.userAgent)} ` +
    `${quoted(e.requestId)} ${quoted(e.authority)} ${quoted(e.upstreamHost)} ${dash(e.upstreamCluster)} ` +
    `- ${e.downstreamLocal} ${e.downstreamRemote} - ${dash(e.route)}\n`
  );
}

/** Istio's JSON keys (absent values as null, as Envoy prints them), then the waypoint's own. */
export function formatAccessLogJson(e: AccessLogEntry): string {
  const out: Record<string, string | number | null> = {};
  for (const [k, v] of Object.entries(fields(e))) out[k] = v === undefined || v === '' ? null : v;
  out.waypoint_reason = e.reason;
  if (e.detail) out.waypoint_detail = e.detail;
  if (e.audit) out.audit = e.audit;
  if (e.attempts && e.attempts > 1) out.attempts = e.attempts;
  return `${JSON.stringify(out)}\n`;
}

/** One TCP connection through the waypoint, as Envoy's TCP proxy logs it. */
export interface TcpAccessLogEntry {
  readonly start: Date;
  readonly flags: string;
  readonly reason: Reason;
  readonly detail: string | undefined;
  readonly bytesReceived: number;
  readonly bytesSent: number;
  readonly durationMs: number;
  readonly upstreamHost: string | undefined;
  readonly upstreamCluster: string | undefined;
  readonly downstreamLocal: string;
  readonly downstreamRemote: string;
}

/** A TCP line: Istio's fields with no request (`"- - -"`, code 0, no details unless a failure). */
function tcpEntry(t: TcpAccessLogEntry): AccessLogEntry {
  return {
    ...t,
    method: '-',
    path: '-',
    protocol: '-',
    status: 0,
    forwardedFor: undefined,
    userAgent: undefined,
    requestId: undefined,
    authority: undefined,
    route: undefined,
  };
}

export class AccessLog {
  readonly #mode: AccessLogMode;
  readonly #out: Writable;
  readonly #format: (e: AccessLogEntry) => string;

  constructor(mode: AccessLogMode, out: Writable = process.stdout, encoding: AccessLogEncoding = 'text') {
    this.#mode = mode;
    this.#out = out;
    this.#format = encoding === 'json' ? formatAccessLogJson : formatAccessLog;
  }

  /**
   * Cheap check before building an entry. `hinted`: a filter asked for the request to be logged
   * (an AUDIT match, Envoy's access_log_hint): logged in any mode but `off`.
   */
  wants(status: number, reason: Reason, hinted = false, telemetry?: AccessLogChoice): boolean {
    // A Telemetry resource's accessLogging decides over the mode: everything, or nothing.
    if (telemetry) return telemetry.enabled;
    if (this.#mode === 'off') return false;
    if (this.#mode === 'all' || hinted) return true;
    return reason !== 'via_upstream' || status >= 500 || status === 0;
  }

  write(e: AccessLogEntry): void {
    this.#out.write(this.#format(e));
  }

  /** A TCP connection's line: every one in `all`, failed ones (a response flag) in `errors`. */
  writeTcp(t: TcpAccessLogEntry, telemetry?: AccessLogChoice): void {
    if (telemetry ? !telemetry.enabled : this.#mode === 'off' || (this.#mode === 'errors' && t.flags === '-'))
      return;
    this.#out.write(this.#format(tcpEntry(t)));
  }
}

/** The Telemetry accessLogging that applies to traffic for `host` (a Service FQDN), if any. */
export function telemetryChoice(snapshot: Snapshot, host: string | undefined): AccessLogChoice | undefined {
  const policy = snapshot.accessLogging;
  if (!policy) return undefined;
  return (host !== undefined ? policy.services.get(host) : undefined) ?? policy.waypoint;
}

export function parseAccessLogMode(v: string | undefined): AccessLogMode {
  if (v === undefined) return 'errors';
  if (v === 'errors' || v === 'all' || v === 'off') return v;
  throw new Error(`--access-log must be errors, all or off (got ${JSON.stringify(v)})`);
}

/** Mesh config accessLogEncoding spells them TEXT and JSON. */
export function parseAccessLogEncoding(v: string | undefined): AccessLogEncoding {
  if (v === undefined) return 'text';
  const lower = v.toLowerCase();
  if (lower === 'text' || lower === 'json') return lower;
  throw new Error(`expected text or json (got ${JSON.stringify(v)})`);
}
