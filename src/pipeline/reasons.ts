// The closed set of reasons for everything the waypoint answers itself, or for how a response came
// to be. One code names one cause; the same code is the access log's `reason`, the `reason` label
// of waypoint_requests_total and the `x-waypoint-reason` header on local replies. Status, body and
// Envoy response flag follow Istio's waypoint (l7-semantics.md §5.1) so clients see the same bytes.
//
// This file is the documentation of the codes: add a code here, never a string elsewhere.

export interface ReasonInfo {
  /** HTTP status of the local reply (for tunnel-level reasons, of the CONNECT response). */
  readonly status: number;
  /** Exact body, as Envoy sends it. Empty string for no body. */
  readonly body: string;
  /** Envoy response flag for the access log and the istio_requests_total `response_flags` label. */
  readonly flag: string;
  /** What happened, for people reading the log. */
  readonly doc: string;
  /** Headers Envoy adds to this local reply. */
  readonly headers?: Readonly<Record<string, string>>;
}

const UPSTREAM_RESET = 'upstream connect error or disconnect/reset before headers. reset reason: ';

export const REASONS = {
  // Normal outcome: the response came from the destination.
  via_upstream: { status: 0, body: '', flag: '-', doc: 'The response came from the upstream endpoint.' },

  // HBONE (tunnel) level.
  hbone_method_not_allowed: {
    status: 405,
    body: 'only CONNECT is accepted on the HBONE port',
    flag: '-',
    doc: 'A request on the HBONE port was not an HTTP/2 CONNECT.',
  },
  hbone_bad_authority: {
    status: 400,
    body: 'CONNECT :authority must be IP:PORT',
    flag: '-',
    doc: 'The CONNECT :authority was missing or not an IP:port.',
  },
  hbone_destination_not_served: {
    status: 503,
    body: 'destination is not bound to this waypoint',
    flag: 'NR',
    doc: 'The CONNECT :authority is neither a Service VIP:port nor a pod IP:port that uses this waypoint.',
  },
  hbone_peer_untrusted: {
    status: 403,
    body: 'peer identity is not a SPIFFE ID of this trust domain',
    flag: '-',
    doc: 'The client certificate had no SPIFFE URI SAN, or one from another trust domain.',
  },
  draining: {
    status: 503,
    body: 'waypoint is draining',
    flag: '-',
    doc: 'A new tunnel arrived after shutdown began.',
  },

  // Routing and endpoints.
  route_not_found: { status: 404, body: '', flag: 'NR', doc: 'No route matched the request.' },
  cluster_not_found: {
    status: 500,
    body: '',
    flag: 'NC',
    doc: 'The chosen backend does not exist (an invalid backendRef).',
  },
  route_no_backend: {
    status: 500,
    body: '',
    flag: '-',
    doc: "The matched route has no backend with a weight above 0 (Istio's direct response 500).",
  },
  route_redirect: {
    status: 302,
    body: '',
    flag: '-',
    doc: 'The matched route redirects (HTTPRoute RequestRedirect, VirtualService redirect); `location` says where.',
  },
  route_direct_response: {
    status: 200,
    body: '',
    flag: '-',
    doc: 'The matched VirtualService rule answers itself (directResponse): its status and body.',
  },
  route_rule_invalid: {
    status: 500,
    body: '',
    flag: 'NC',
    doc: "The matched rule could not be compiled (an unsupported filter, a bad regex, a rewrite its match cannot take; the route's Accepted condition or the VirtualService warning says which): its traffic gets 500 rather than falling through to another rule, flagged as Envoy flags a route with no cluster to serve it.",
  },
  cors_preflight: {
    status: 200,
    body: '',
    flag: '-',
    doc: "A CORS preflight (OPTIONS with Origin and Access-Control-Request-Method) answered from the route's CORS policy.",
  },
  no_healthy_upstream: {
    status: 503,
    body: 'no healthy upstream',
    flag: 'UH',
    doc: 'The destination has no ready endpoint (none exist, none ready, or all ejected).',
  },

  // Upstream failures (reply bodies are Envoy's).
  upstream_connect_failure: {
    status: 503,
    body: `${UPSTREAM_RESET}connection failure`,
    flag: 'UF',
    doc: "The endpoint's HBONE port could not be reached, the TLS handshake or identity check failed, or the CONNECT was refused.",
  },
  upstream_remote_reset: {
    status: 503,
    body: `${UPSTREAM_RESET}remote reset`,
    flag: 'UR',
    doc: 'The upstream reset the stream before sending response headers.',
  },
  upstream_connection_termination: {
    status: 503,
    body: `${UPSTREAM_RESET}connection termination`,
    flag: 'UC',
    doc: 'The upstream connection closed before response headers.',
  },
  upstream_protocol_error: {
    status: 502,
    body: `${UPSTREAM_RESET}protocol error`,
    flag: 'UPE',
    doc: 'The upstream sent a response that could not be parsed.',
  },
  upstream_overflow: {
    status: 503,
    body: `${UPSTREAM_RESET}overflow`,
    flag: 'UO',
    doc: 'A circuit-breaker limit (connections, pending or active requests) was reached.',
    headers: { 'x-envoy-overloaded': 'true' },
  },
  // Overload (src/lifecycle/overload.ts): Envoy's overload manager answers 503 "envoy overloaded".
  overload_tunnels: {
    status: 503,
    body: 'envoy overloaded',
    flag: 'OM',
    doc: 'A new CONNECT arrived while the waypoint serves --max-tunnels tunnels, or --max-tunnels-per-connection on its connection.',
    headers: { 'x-envoy-overloaded': 'true' },
  },
  overload_pending_requests: {
    status: 503,
    body: 'envoy overloaded',
    flag: 'OM',
    doc: 'A request arrived while --max-pending-requests requests wait on an upstream response.',
    headers: { 'x-envoy-overloaded': 'true' },
  },
  overload_heap: {
    status: 503,
    body: 'envoy overloaded',
    flag: 'OM',
    doc: 'Heap use is above --heap-high-water (and has not yet fallen below --heap-low-water): new tunnels and requests are shed.',
    headers: { 'x-envoy-overloaded': 'true' },
  },
  upstream_request_timeout: {
    status: 504,
    body: 'upstream request timeout',
    flag: 'UT',
    doc: 'The route timeout passed before the upstream response.',
  },
  stream_idle_timeout: {
    status: 408,
    body: 'stream timeout',
    flag: 'SI',
    doc: 'No byte went either way on the stream for the idle timeout (run --stream-idle-timeout, Envoy default 5 min); before the response head the client gets 408, after it a reset.',
  },
  upstream_reset_after_response_started: {
    status: 0,
    body: '',
    flag: 'UR',
    doc: 'The upstream failed after the response had started; the downstream stream was reset.',
  },

  // Downstream (client) side.
  downstream_protocol_error: {
    status: 400,
    body: 'Bad Request',
    flag: 'DPE',
    doc: 'The client sent bytes that are not valid HTTP.',
  },
  invalid_request_target: {
    status: 400,
    body: 'Bad Request',
    flag: 'DPE',
    doc: 'The request target is neither origin-form nor absolute-form http(s) (or asterisk-form with a method other than OPTIONS), or holds characters no request may carry; answered before any filter or body is read, and the connection closed.',
  },
  absolute_path_rejected: {
    status: 404,
    body: '',
    flag: '-',
    doc: "`OPTIONS *`: like Envoy, the waypoint routes only paths that start with '/'.",
  },
  request_header_timeout: {
    status: 408,
    body: 'request header timeout',
    flag: '-',
    doc: 'An inner HTTP/1.x request head was not complete within run --request-head-timeout (Envoy: request_headers_timeout); the connection is closed.',
  },
  overload_pending_heads: {
    status: 503,
    body: 'envoy overloaded',
    flag: 'OM',
    headers: { 'x-envoy-overloaded': 'true' },
    doc: 'The client identity already holds run --max-pending-heads tunnels whose first request head is incomplete; the new one is refused at once.',
  },
  downstream_headers_too_large: {
    status: 431,
    body: 'Request Header Fields Too Large',
    flag: 'DPE',
    doc: 'The request headers exceed the configured limit.',
  },
  downstream_reset: {
    status: 0,
    body: '',
    flag: 'DC',
    doc: 'The client went away before the response was complete.',
  },
  internal_error: {
    status: 500,
    body: 'internal error',
    flag: '-',
    doc: 'A bug: a filter or the engine threw. The request was answered, the process kept running.',
  },

  // Filters fill in these (later issues); defined here so the set stays closed.
  authz_denied: {
    status: 403,
    body: 'RBAC: access denied',
    flag: '-',
    doc: 'An AuthorizationPolicy denied the request.',
  },
  jwt_invalid: {
    status: 401,
    body: 'Jwt verification fails',
    flag: '-',
    doc: 'A RequestAuthentication token was present but invalid (bad signature, expired, unknown issuer or kid, malformed); the body is the exact jwt_verify_lib status and the reply carries `www-authenticate: Bearer realm="<url>", error="invalid_token"`.',
  },
  jwt_audience_mismatch: {
    status: 403,
    body: 'Audiences in Jwt are not allowed',
    flag: '-',
    doc: 'A RequestAuthentication token was valid but none of its audiences is allowed by the rule; the reply carries `www-authenticate`.',
  },
  ext_authz_denied: {
    status: 403,
    body: '',
    flag: 'UAEX',
    doc: "A CUSTOM AuthorizationPolicy's ext_authz provider denied the request; status, body and headers are the provider's when it sent them.",
  },
  ext_authz_error: {
    status: 403,
    body: '',
    flag: 'UAEX',
    doc: "A CUSTOM AuthorizationPolicy's ext_authz provider could not be reached, failed or timed out and it is not failOpen; the status is its statusOnError (default 403).",
  },
  request_body_too_large: {
    status: 413,
    body: 'Payload Too Large',
    flag: '-',
    doc: 'An ext_authz provider with includeRequestBodyInCheck and allowPartialMessage false was to check a body larger than its maxRequestBytes.',
  },
  local_rate_limited: {
    status: 429,
    body: 'local_rate_limited',
    flag: 'RL',
    doc: 'A rate limit was exceeded.',
  },
  rate_limited: {
    status: 429,
    body: '',
    flag: 'RL',
    doc: "A global (Redis-backed, shared by every replica) rate limit was exceeded; the reply carries `x-envoy-ratelimited: true`, as Envoy's ratelimit filter.",
  },
  rate_limit_service_error: {
    status: 500,
    body: '',
    flag: 'RLSE',
    doc: 'A global rate limit could not be checked (Redis unreachable, timed out or its circuit open) and the waypoint runs with `--redis-failure-mode closed` (Envoy Gateway failClosed: 500).',
  },
  fault_abort: {
    status: 503,
    body: 'fault filter abort',
    flag: 'FI',
    doc: 'A fault-injection abort was applied.',
  },
} as const satisfies Record<string, ReasonInfo>;

export type Reason = keyof typeof REASONS;

export function reasonInfo(reason: Reason): ReasonInfo {
  return REASONS[reason];
}

/** The connection to the endpoint broke after it was made: what Envoy's `reset` retry_on means. */
export const UPSTREAM_RESET_REASONS: ReadonlySet<Reason> = new Set<Reason>([
  'upstream_remote_reset',
  'upstream_connection_termination',
  'upstream_protocol_error',
]);
