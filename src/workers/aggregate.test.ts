import client from 'prom-client';
import { describe, expect, it } from 'vitest';
import { aggregate } from './aggregate.ts';

async function worker(requests: number, draining: number, version: number) {
  const registry = new client.Registry();
  new client.Counter({ name: 'istio_requests_total', help: 'h', labelNames: ['code'], registers: [registry] })
    .labels('200')
    .inc(requests);
  new client.Gauge({ name: 'waypoint_draining', help: 'h', registers: [registry] }).set(draining);
  new client.Gauge({ name: 'waypoint_config_version', help: 'h', registers: [registry] }).set(version);
  new client.Gauge({ name: 'waypoint_hbone_sessions_active', help: 'h', registers: [registry] }).set(
    requests,
  );
  return registry.getMetricsAsJSON();
}

describe('aggregate', () => {
  it('sums counters and held gauges; replica state takes max (draining) or min (config version)', async () => {
    const text = await aggregate([await worker(3, 0, 7), await worker(4, 1, 6)]).metrics();
    expect(text).toMatch(/^istio_requests_total\{code="200"\} 7$/m);
    expect(text).toMatch(/^waypoint_hbone_sessions_active 7$/m);
    expect(text).toMatch(/^waypoint_draining 1$/m);
    expect(text).toMatch(/^waypoint_config_version 6$/m);
  });
});
