// Envoy's %RESPONSE_CODE_DETAILS% strings for the waypoint's reason codes, so the access log's
// details field reads as an Envoy waypoint's does (Envoy StreamInfo::ResponseCodeDetails and the
// filters' own strings). The reason code itself stays in x-waypoint-reason, the JSON log and metrics.
import type { Reason } from '../pipeline/reasons.ts';

const RESET = (why: string): string => `upstream_reset_before_response_started{${why}}`;

const DETAILS: Partial<Record<Reason, string>> = {
  via_upstream: 'via_upstream',
  route_not_found: 'route_not_found',
  cluster_not_found: 'cluster_not_found',
  route_no_backend: 'direct_response',
  route_redirect: 'direct_response',
  route_direct_response: 'direct_response',
  cors_preflight: 'cors_response',
  no_healthy_upstream: 'no_healthy_upstream',
  upstream_connect_failure: RESET('connection_failure'),
  upstream_remote_reset: RESET('remote_reset'),
  upstream_connection_termination: RESET('connection_termination'),
  upstream_protocol_error: RESET('protocol_error'),
  upstream_overflow: RESET('overflow'),
  upstream_request_timeout: 'upstream_response_timeout',
  stream_idle_timeout: 'stream_idle_timeout',
  upstream_reset_after_response_started: 'upstream_reset_after_response_started{remote_reset}',
  downstream_protocol_error: 'codec_error',
  downstream_headers_too_large: 'http1.headers_too_large',
  downstream_reset: 'downstream_remote_disconnect',
  authz_denied: 'rbac_access_denied_matched_policy[none]',
  jwt_invalid: 'jwt_authn_access_denied{Jwt_verification_fails}',
  jwt_audience_mismatch: 'jwt_authn_access_denied{Audiences_in_Jwt_are_not_allowed}',
  ext_authz_denied: 'ext_authz_denied',
  ext_authz_error: 'ext_authz_error',
  request_body_too_large: 'request_payload_too_large',
  local_rate_limited: 'local_rate_limited',
  rate_limited: 'request_rate_limited',
  rate_limit_service_error: 'rate_limiter_error',
  fault_abort: 'fault_filter_abort',
};

/** Filters that already word their detail as Envoy does (the matched RBAC policy, a JWT failure). */
const ENVOY_WORDED = /^(rbac_access_denied_matched_policy\[|jwt_authn_access_denied\{)/;

export function responseCodeDetails(reason: Reason, detail: string | undefined): string {
  if (detail && ENVOY_WORDED.test(detail)) return detail.replace(/\s/g, '_');
  return DETAILS[reason] ?? reason;
}

/** Reasons whose detail says why the upstream connection failed (%UPSTREAM_TRANSPORT_FAILURE_REASON%). */
const TRANSPORT: ReadonlySet<Reason> = new Set<Reason>([
  'upstream_connect_failure',
  'upstream_remote_reset',
  'upstream_connection_termination',
  'upstream_protocol_error',
]);

export function transportFailureReason(reason: Reason, detail: string | undefined): string | undefined {
  return TRANSPORT.has(reason) ? detail : undefined;
}
