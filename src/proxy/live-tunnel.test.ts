import { expect, it } from 'vitest';
import type { Snapshot } from '../../config/model.ts';
import type { Binding } from '../pipeline/context.ts';
import { LiveTunnel } from './live-tunnel.ts';

const who = {
  peer: { uri: 'spiffe://cluster.local/ns/shop/sa/sleep' } as never,
  source: { ip: '127.0.0.50', port: 40000 },
  destination: { ip: '127.0.1.10', port: 80 },
};
const binding = (name: string) => ({ kind: 'service', name }) as unknown as Binding;
const snapshot = (services: Record<string, Binding>, workloads: Record<string, Binding> = {}) =>
  ({
    services: new Map(Object.entries(services)),
    workloads: new Map(Object.entries(workloads)),
  }) as unknown as Snapshot;

it('follows the snapshot in force, and keeps the accepted one when the binding is gone from it', () => {
  const first = snapshot({ '127.0.1.10:80': binding('v1') });
  let now: Snapshot | undefined = first;
  const t = new LiveTunnel(
    { snapshot: first, binding: binding('v1'), serviceKey: '127.0.1.10:80' },
    who,
    () => now,
  );
  expect(t.snapshot).toBe(first);
  const second = snapshot({ '127.0.1.10:80': binding('v2') });
  now = second;
  expect(t.snapshot).toBe(second);
  expect(t.binding).toMatchObject({ name: 'v2' });
  now = snapshot({});
  expect(t.snapshot).toBe(first);
  expect(t.binding).toMatchObject({ name: 'v1' });
  expect(t.destination).toBe(who.destination);
});

it('looks a pod address up among the workloads', () => {
  const first = snapshot({}, { '127.0.1.10': binding('pod-a') });
  let now: Snapshot | undefined = first;
  const t = new LiveTunnel(
    { snapshot: first, binding: binding('pod-a'), serviceKey: undefined },
    who,
    () => now,
  );
  now = snapshot({ '127.0.1.10:80': binding('svc') }, { '127.0.1.10': binding('pod-b') });
  expect(t.binding).toMatchObject({ name: 'pod-b' });
});
