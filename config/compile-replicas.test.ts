// How many replicas the waypoint runs, learned from its own Pods in the configuration: what
// per-waypoint limits (rate limits, connection pools with scope Waypoint) are divided by.
import { afterAll, describe, expect, it } from 'vitest';
import type { Snapshot } from './model.ts';
import { compileFiles, docs, pod, removeTrees, waypointGateway } from './test-support.ts';

afterAll(removeTrees);

const GW_NAME = 'gateway.networking.k8s.io/gateway-name';
const READY = { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] };
const NOT_READY = { phase: 'Running', conditions: [{ type: 'Ready', status: 'False' }] };

async function compile(...objects: unknown[]): Promise<Snapshot> {
  const { snapshot, report } = await compileFiles({ 'config.yaml': docs(...objects) });
  expect(report.rejected).toEqual([]);
  return snapshot;
}

const replica = (
  name: string,
  status: Record<string, unknown> = READY,
  labels: Record<string, string> = { [GW_NAME]: 'waypoint' },
) => pod({ name, labels, status });

describe('waypoint replicas', () => {
  it('counts the Ready Pods labelled with the Gateway name in its namespace', async () => {
    const s = await compile(waypointGateway(), replica('waypoint-a'), replica('waypoint-b'));
    expect(s.gateway).toMatchObject({ replicas: 2, replicasKnown: true });
  });

  it('accepts the istio.io/gateway-name label too', async () => {
    const s = await compile(
      waypointGateway(),
      replica('waypoint-a'),
      replica('waypoint-b', READY, { 'istio.io/gateway-name': 'waypoint' }),
    );
    expect(s.gateway.replicas).toBe(2);
  });

  it('leaves out Pods not Ready, terminal, being deleted, or of another gateway or namespace', async () => {
    const s = await compile(
      waypointGateway(),
      replica('waypoint-a'),
      replica('waypoint-starting', NOT_READY),
      replica('waypoint-done', { phase: 'Succeeded' }),
      replica('waypoint-failed', { phase: 'Failed', conditions: [{ type: 'Ready', status: 'True' }] }),
      pod({
        name: 'waypoint-leaving',
        labels: { [GW_NAME]: 'waypoint' },
        status: READY,
        deletionTimestamp: '2026-01-01T00:00:00Z',
      }),
      replica('other-a', READY, { [GW_NAME]: 'other-waypoint' }),
      pod({ name: 'elsewhere', namespace: 'shop', labels: { [GW_NAME]: 'waypoint' }, status: READY }),
      replica('unlabelled', READY, {}),
    );
    expect(s.gateway).toMatchObject({ replicas: 1, replicasKnown: true });
  });

  it('is 1, and flagged unknown, when no live replica is in the configuration', async () => {
    const none = await compile(waypointGateway(), replica('waypoint-starting', NOT_READY));
    expect(none.gateway).toMatchObject({ replicas: 1, replicasKnown: false });
  });
});
