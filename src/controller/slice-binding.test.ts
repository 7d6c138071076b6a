// "One rule for binding": a waypoint compiled from its slice binds exactly what it binds when
// compiled from the whole cluster, through the file source's own compile.
import { afterAll, describe, expect, it } from 'vitest';
import { compileFiles, docs, removeTrees } from '../../config/test-support.ts';
import { fixture, KINDS } from '../../test/helpers/cluster-fixture.ts';
import { ClusterSliceSource } from './cluster-slice-source.ts';

afterAll(removeTrees);

const OPTS = {
  gateway: { namespace: 'shop', name: 'waypoint' },
  trustDomain: 'cluster.local',
  clusterDomain: 'cluster.local',
  now: () => new Date(0),
};

describe('a slice compiles to the same bindings as the whole cluster', () => {
  it('binds the same services, ports, endpoints and identities', async () => {
    const all = fixture();
    const source = new ClusterSliceSource([...new Set([...KINDS, ...all.map((d) => d.kind)])], {
      rootNamespace: 'istio-system',
      clusterDomain: 'cluster.local',
    });
    for (const d of all) source.handlerFor(d.kind).upsert(d);
    for (const d of all) source.handlerFor(d.kind).synced();
    const sliced = [...(source.slice('shop/waypoint')?.documents.values() ?? [])];
    expect(sliced.length).toBeLessThan(all.length);
    const whole = await compileFiles({ 'all.yaml': docs(...all) }, OPTS);
    const part = await compileFiles({ 'slice.yaml': docs(...sliced) }, OPTS);
    const bindings = (s: typeof whole.snapshot) =>
      [...s.services.values()].map((b) => ({
        key: b.key,
        service: `${b.service.namespace}/${b.service.name}`,
        endpoints: b.endpoints.map((e) => `${e.ip}:${e.port} ${e.identity} ${e.ready}`),
      }));
    expect(bindings(whole.snapshot).length).toBeGreaterThan(0);
    expect(bindings(part.snapshot)).toEqual(bindings(whole.snapshot));
    expect([...part.snapshot.workloads.keys()]).toEqual([...whole.snapshot.workloads.keys()]);
    expect(part.snapshot.gateway.conditions).toEqual(whole.snapshot.gateway.conditions);
    // The refusals (a Service asking for this waypoint from a namespace it does not admit) too.
    const refusals = (s: typeof whole.snapshot) =>
      s.messages.map((m) => m.message.replace(/^.*?: /, '')).filter((m) => m.includes('asks for waypoint'));
    expect(refusals(whole.snapshot).length).toBeGreaterThan(0);
    expect(refusals(part.snapshot)).toEqual(refusals(whole.snapshot));
  });
});
