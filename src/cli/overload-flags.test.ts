import { expect, it } from 'vitest';
import { UsageError } from './flags.ts';
import { overloadSettings } from './overload-flags.ts';

it('defaults: Envoy-sized limits, 60 KiB heads, 64 KiB replay buffer, heap marks 0.9/0.8', () => {
  const s = overloadSettings({}, {});
  expect(s.overload).toMatchObject({
    maxConnections: 10_000,
    maxTunnelsPerConnection: 1000,
    maxTunnels: 50_000,
    maxPendingRequests: 10_000,
    heapHighWater: 0.9,
    heapLowWater: 0.8,
    heapMaxBytes: 0,
  });
  expect(s.maxRequestHeadersBytes).toBe(60 * 1024);
  expect(s.maxReplayBufferBytes).toBe(64 * 1024);
});

it('flags win over WAYPOINT_ variables, which win over defaults', () => {
  const s = overloadSettings(
    { 'max-tunnels': '7' },
    { WAYPOINT_MAX_TUNNELS: '9', WAYPOINT_MAX_CONNECTIONS: '3', WAYPOINT_HEAP_MAX_MB: '256' },
  );
  expect(s.overload.maxTunnels).toBe(7);
  expect(s.overload.maxConnections).toBe(3);
  expect(s.overload.heapMaxBytes).toBe(256 * 1024 * 1024);
});

it('names the flag of a bad value', () => {
  expect(() => overloadSettings({ 'max-pending-requests': 'lots' }, {})).toThrow(UsageError);
  expect(() => overloadSettings({ 'max-pending-requests': 'lots' }, {})).toThrow(/--max-pending-requests/);
  expect(() => overloadSettings({ 'heap-high-water': '1.5' }, {})).toThrow(/--heap-high-water/);
  expect(() => overloadSettings({ 'heap-high-water': '0.5', 'heap-low-water': '0.6' }, {})).toThrow(
    /--heap-low-water/,
  );
});
