import { describe, expect, it } from 'vitest';
import { clusterName } from './cluster.ts';

// The names Istio's waypoint logs as UPSTREAM_CLUSTER (inbound-vip|PORT|PROTOCOL[/SUBSET]|HOST).
describe('clusterName', () => {
  it('names a Service port of an HTTP protocol, with and without a subset', () => {
    expect(clusterName(9080, undefined, 'reviews.shop.svc.cluster.local', 'http')).toBe(
      'inbound-vip|9080|http|reviews.shop.svc.cluster.local',
    );
    expect(clusterName(9080, 'v2', 'reviews.shop.svc.cluster.local', 'grpc')).toBe(
      'inbound-vip|9080|http/v2|reviews.shop.svc.cluster.local',
    );
  });

  it('says tcp for TCP and TLS ports', () => {
    expect(clusterName(5432, undefined, 'db.shop.svc.cluster.local', 'tcp')).toBe(
      'inbound-vip|5432|tcp|db.shop.svc.cluster.local',
    );
    expect(clusterName(443, undefined, 'api.example.com', 'tls')).toBe('inbound-vip|443|tcp|api.example.com');
  });
});
