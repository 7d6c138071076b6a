import { describe, expect, it } from 'vitest';
import { type AccessLogEntry, formatAccessLog, formatAccessLogJson } from './access-log.ts';

const entry: AccessLogEntry = {
  start: new Date('2026-01-02T03:04:05.678Z'),
  method: 'GET',
  path: '/api?x=1',
  protocol: 'HTTP/1.1',
  status: 503,
  reason: 'upstream_connect_failure',
  flags: 'UF,URX',
  detail: 'connect ECONNREFUSED 10.0.0.7:15008',
  bytesReceived: 0,
  bytesSent: 91,
  durationMs: 12.4,
  forwardedFor: undefined,
  userAgent: 'curl/8.5.0',
  requestId: 'r-1',
  authority: 'reviews:9080',
  upstreamHost: '10.0.0.7:9080',
  upstreamCluster: 'inbound-vip|9080|http|reviews.shop.svc.cluster.local',
  downstreamLocal: '10.96.0.5:9080',
  downstreamRemote: '10.0.0.9:41000',
  route: 'default',
  attempts: 3,
};

// Istio's EnvoyTextLogFormat, each %OPERATOR% as a capture group, in order.
const ISTIO_TEXT =
  /^\[(?<START_TIME>[^\]]+)\] "(?<METHOD>\S+) (?<PATH>\S+) (?<PROTOCOL>\S+)" (?<RESPONSE_CODE>\d+) (?<RESPONSE_FLAGS>\S+) (?<RESPONSE_CODE_DETAILS>\S+) (?<CONNECTION_TERMINATION_DETAILS>\S+) "(?<UPSTREAM_TRANSPORT_FAILURE_REASON>[^"]*)" (?<BYTES_RECEIVED>\d+) (?<BYTES_SENT>\d+) (?<DURATION>\d+) (?<UPSTREAM_SERVICE_TIME>\S+) "(?<X_FORWARDED_FOR>[^"]*)" "(?<USER_AGENT>[^"]*)" "(?<REQUEST_ID>[^"]*)" "(?<AUTHORITY>[^"]*)" "(?<UPSTREAM_HOST>[^"]*)" (?<UPSTREAM_CLUSTER>\S+) (?<UPSTREAM_LOCAL_ADDRESS>\S+) (?<DOWNSTREAM_LOCAL_ADDRESS>\S+) (?<DOWNSTREAM_REMOTE_ADDRESS>\S+) (?<REQUESTED_SERVER_NAME>\S+) (?<ROUTE_NAME>\S+)\n$/;

describe("Istio's default access-log format", () => {
  it('has every field of EnvoyTextLogFormat in its place, and nothing after ROUTE_NAME', () => {
    const f = ISTIO_TEXT.exec(formatAccessLog(entry))?.groups;
    expect(f).toEqual({
      START_TIME: '2026-01-02T03:04:05.678Z',
      METHOD: 'GET',
      PATH: '/api?x=1',
      PROTOCOL: 'HTTP/1.1',
      RESPONSE_CODE: '503',
      RESPONSE_FLAGS: 'UF,URX',
      RESPONSE_CODE_DETAILS: 'upstream_reset_before_response_started{connection_failure}',
      CONNECTION_TERMINATION_DETAILS: '-',
      UPSTREAM_TRANSPORT_FAILURE_REASON: 'connect ECONNREFUSED 10.0.0.7:15008',
      BYTES_RECEIVED: '0',
      BYTES_SENT: '91',
      DURATION: '12',
      UPSTREAM_SERVICE_TIME: '-',
      X_FORWARDED_FOR: '-',
      USER_AGENT: 'curl/8.5.0',
      REQUEST_ID: 'r-1',
      AUTHORITY: 'reviews:9080',
      UPSTREAM_HOST: '10.0.0.7:9080',
      UPSTREAM_CLUSTER: 'inbound-vip|9080|http|reviews.shop.svc.cluster.local',
      UPSTREAM_LOCAL_ADDRESS: '-',
      DOWNSTREAM_LOCAL_ADDRESS: '10.96.0.5:9080',
      DOWNSTREAM_REMOTE_ADDRESS: '10.0.0.9:41000',
      REQUESTED_SERVER_NAME: '-',
      ROUTE_NAME: 'default',
    });
  });

  it("puts Envoy's details, not the reason code, in RESPONSE_CODE_DETAILS", () => {
    const details = (e: Partial<AccessLogEntry>) =>
      ISTIO_TEXT.exec(formatAccessLog({ ...entry, ...e }))?.groups?.RESPONSE_CODE_DETAILS;
    expect(details({ reason: 'via_upstream', detail: undefined })).toBe('via_upstream');
    expect(details({ reason: 'authz_denied', detail: undefined })).toBe(
      'rbac_access_denied_matched_policy[none]',
    );
    expect(
      details({
        reason: 'authz_denied',
        detail: 'rbac_access_denied_matched_policy[ns[shop]-policy[deny]-rule[0]]',
      }),
    ).toBe('rbac_access_denied_matched_policy[ns[shop]-policy[deny]-rule[0]]');
    expect(details({ reason: 'upstream_request_timeout' })).toBe('upstream_response_timeout');
    expect(details({ reason: 'rate_limited' })).toBe('request_rate_limited');
    expect(details({ reason: 'fault_abort' })).toBe('fault_filter_abort');
    // Only upstream connection failures fill UPSTREAM_TRANSPORT_FAILURE_REASON.
    expect(
      ISTIO_TEXT.exec(formatAccessLog({ ...entry, reason: 'route_not_found', detail: 'no route' }))?.groups
        ?.UPSTREAM_TRANSPORT_FAILURE_REASON,
    ).toBe('-');
  });

  it("JSON: Istio's keys (absent values null) plus the waypoint's reason, detail and attempts", () => {
    expect(JSON.parse(formatAccessLogJson(entry))).toEqual({
      start_time: '2026-01-02T03:04:05.678Z',
      method: 'GET',
      path: '/api?x=1',
      protocol: 'HTTP/1.1',
      response_code: 503,
      response_flags: 'UF,URX',
      response_code_details: 'upstream_reset_before_response_started{connection_failure}',
      connection_termination_details: null,
      upstream_transport_failure_reason: 'connect ECONNREFUSED 10.0.0.7:15008',
      bytes_received: 0,
      bytes_sent: 91,
      duration: 12,
      upstream_service_time: null,
      x_forwarded_for: null,
      user_agent: 'curl/8.5.0',
      request_id: 'r-1',
      authority: 'reviews:9080',
      upstream_host: '10.0.0.7:9080',
      upstream_cluster: 'inbound-vip|9080|http|reviews.shop.svc.cluster.local',
      upstream_local_address: null,
      downstream_local_address: '10.96.0.5:9080',
      downstream_remote_address: '10.0.0.9:41000',
      requested_server_name: null,
      route_name: 'default',
      waypoint_reason: 'upstream_connect_failure',
      waypoint_detail: 'connect ECONNREFUSED 10.0.0.7:15008',
      attempts: 3,
    });
  });
});
