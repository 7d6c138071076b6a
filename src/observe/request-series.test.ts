// The per-request series: a request is counted in the series of its own labels, whatever cache
// path found the children (packed number or string key), and distinct label sets never share one.
import { describe, expect, it } from 'vitest';
import type { ServiceInfo } from '../../config/model.ts';
import type { Outcome } from '../pipeline/context.ts';
import { REASONS, type Reason } from '../pipeline/reasons.ts';
import { Metrics } from './metrics.ts';
import { responseCode } from './request-series.ts';
import { unknownWorkload } from './workload-labels.ts';

const gauges = {
  hboneSessions: () => 0,
  hboneTunnels: () => 0,
  upstreamHttp1Connections: () => 0,
  upstreamHttp2Connections: () => 0,
  upstreamHboneSessions: () => 0,
  draining: () => false,
  configVersion: () => 1,
};
const outcome = (status: number, reason: Reason, grpcStatus?: string): Outcome => ({
  status,
  reason,
  grpcStatus,
  upstreamHost: undefined,
  bytesReceived: 10,
  bytesSent: 20,
  durationMs: 3,
  detail: undefined,
});
const svc = {
  name: 'web',
  namespace: 'shop',
  hostname: 'web.shop.svc.cluster.local',
  labels: {},
} as ServiceInfo;

/** istio_requests_total lines with their value, label order as exported. */
async function requestsTotal(m: Metrics): Promise<string[]> {
  return (await m.render()).split('\n').filter((l) => l.startsWith('istio_requests_total{'));
}

describe('request series', () => {
  it('counts each request in the series of its own labels', async () => {
    const m = new Metrics(gauges, { defaultMetrics: false });
    const src = unknownWorkload('spiffe://cluster.local/ns/shop/sa/curl', 'c1');
    const dst = unknownWorkload('spiffe://cluster.local/ns/shop/sa/web', 'c1');
    const peers = m.requests.peers(src, dst, m.requests.service(svc));
    expect(m.requests.peers(src, dst, m.requests.service(svc))).toBe(peers);
    peers.request(outcome(200, 'via_upstream'), '-', false, undefined);
    peers.request(outcome(200, 'via_upstream'), '-', false, undefined);
    peers.request(outcome(200, 'via_upstream', '0'), '-', true, 'shop.r.0');
    peers.request(outcome(200, 'via_upstream', '00'), '-', true, 'shop.r.0');
    peers.request(outcome(503, 'upstream_connect_failure'), 'UF,URX', false, undefined);
    const lines = await requestsTotal(m);
    expect(lines).toHaveLength(4);
    expect(
      lines.find((l) => l.includes('response_code="200"') && l.includes('request_protocol="http"')),
    ).toMatch(/destination_service="web.shop.svc.cluster.local".*grpc_response_status="".* 2$/);
    expect(lines.filter((l) => l.includes('grpc_response_status="0"'))).toEqual([
      expect.stringMatching(/ 1$/),
    ]);
    expect(lines.filter((l) => l.includes('grpc_response_status="00"'))).toEqual([
      expect.stringMatching(/ 1$/),
    ]);
    expect(lines.find((l) => l.includes('response_flags="UF,URX"'))).toMatch(/response_code="503".* 1$/);
    const text = await m.render();
    expect(text).toMatch(
      /waypoint_requests_total\{reason="via_upstream",response_code="200",response_flags="-",route="shop.r.0"\} 2/,
    );
    expect(text).toMatch(/istio_request_bytes_sum\{.*response_code="503".*\} 10/);
  });

  it('labels a request without a Service unknown, with the namespace it knows', async () => {
    const m = new Metrics(gauges, { defaultMetrics: false });
    const w = unknownWorkload('spiffe://cluster.local/ns/shop/sa/curl', 'c1');
    m.requests
      .peers(w, w, m.requests.service(undefined, 'shop'))
      .request(outcome(200, 'via_upstream'), '-', false, undefined);
    expect(await requestsTotal(m)).toEqual([
      expect.stringMatching(
        /destination_service="unknown",destination_service_name="unknown",destination_service_namespace="shop"/,
      ),
    ]);
  });

  it('packs response labels into distinct numbers, and only canonical ones', () => {
    const seen = new Map<number, string>();
    const reasons = Object.keys(REASONS) as Reason[];
    const grpcs = ['', ...Array.from({ length: 17 }, (_, i) => String(i))];
    for (const reason of reasons)
      for (const grpcStatus of grpcs)
        for (const grpc of [false, true])
          for (const status of [0, 200, 404, 503, 999]) {
            const code = responseCode(status, grpcStatus, reason, REASONS[reason].flag, grpc);
            const labels = `${status}|${grpcStatus}|${reason}|${grpc}`;
            expect(code, labels).toBeTypeOf('number');
            expect(seen.get(code!), labels).toBeUndefined();
            seen.set(code!, labels);
          }
    expect(responseCode(200, '00', 'via_upstream', '-', true)).toBeUndefined();
    expect(responseCode(200, '17', 'via_upstream', '-', true)).toBeUndefined();
    expect(responseCode(200, '', 'via_upstream', 'DI', false)).toBeUndefined();
    expect(responseCode(1000, '', 'via_upstream', '-', false)).toBeUndefined();
  });
});
