import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MemorySliceSource } from '../../test/helpers/memory-slice-source.ts';
import { silentLogger } from '../observe/logger.ts';
import type { Push } from './protocol.ts';
import type { KubeDocument } from './slice-source.ts';
import { StreamMetrics } from './stream-metrics.ts';
import { WaypointStream } from './waypoint-stream.ts';

const GW = 'shop/waypoint';
const svc = (name: string): KubeDocument => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'shop' },
});
const keys = (p: Push) => p.upserts.map((u) => u.key);

describe('WaypointStream', () => {
  let source: MemorySliceSource;
  let pushes: Push[];
  let stream: WaypointStream;

  beforeEach(() => {
    vi.useFakeTimers();
    source = new MemorySliceSource();
    source.addGateway(GW);
    source.put(GW, svc('a'));
    pushes = [];
    stream = new WaypointStream({
      gateway: GW,
      source,
      write: (p) => pushes.push(p),
      timing: { debounceMs: 100, maxDelayMs: 1000 },
      metrics: new StreamMetrics(new Registry()),
      log: silentLogger,
    });
    stream.start();
  });
  afterEach(() => {
    stream.close();
    vi.useRealTimers();
  });

  it('sends the full snapshot at once, and a change only after the quiet time', () => {
    expect(pushes).toHaveLength(1);
    expect(pushes[0]).toMatchObject({ full: true, removes: [] });
    stream.acknowledge(pushes[0]!.version, []);
    source.put(GW, svc('b'));
    vi.advanceTimersByTime(99);
    expect(pushes).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(pushes).toHaveLength(2);
    expect(keys(pushes[1]!)).toEqual(['/Service/shop/b']);
  });

  it('pushes a change that never quiets down after the longest delay, with all changes so far', () => {
    stream.acknowledge(pushes[0]!.version, []);
    for (let t = 0; t < 1000; t += 50) {
      source.put(GW, svc(`s${t}`));
      vi.advanceTimersByTime(50);
    }
    expect(pushes).toHaveLength(2);
    expect(pushes[1]!.upserts).toHaveLength(20);
  });

  it('holds one push unacknowledged: later changes wait for the ACK and go as one delta', () => {
    source.put(GW, svc('b'));
    source.put(GW, svc('c'));
    vi.advanceTimersByTime(5000);
    expect(pushes).toHaveLength(1);
    stream.acknowledge('v-unknown', []);
    expect(pushes).toHaveLength(1);
    stream.acknowledge(pushes[0]!.version, []);
    expect(pushes).toHaveLength(2);
    expect(keys(pushes[1]!)).toEqual(['/Service/shop/b', '/Service/shop/c']);
  });

  it('sends nothing for a change that leaves the documents as the waypoint has them', () => {
    stream.acknowledge(pushes[0]!.version, []);
    source.remove(GW, '/Service/shop/none');
    vi.advanceTimersByTime(200);
    expect(pushes).toHaveLength(1);
  });

  it('waits for a Gateway without a slice, and stops on close', () => {
    const later: Push[] = [];
    const s = new WaypointStream({
      gateway: 'shop/later',
      source,
      write: (p) => later.push(p),
      timing: { debounceMs: 100, maxDelayMs: 1000 },
      metrics: new StreamMetrics(new Registry()),
      log: silentLogger,
    });
    s.start();
    expect(later).toHaveLength(0);
    source.addGateway('shop/later');
    vi.advanceTimersByTime(100);
    expect(later).toMatchObject([{ full: true, upserts: [] }]);
    s.close();
    expect(source.listeners('shop/later')).toBe(0);
  });
});
