import { describe, expect, it } from 'vitest';
import type { Endpoint } from '../../config/model.ts';
import { type Cluster, DEFAULT_TRAFFIC_POLICY, type OutlierDetectionPolicy } from './cluster.ts';
import { hostKey } from './load-balancer.ts';
import { type EjectionEvent, type OutlierClock, OutlierDetector } from './outlier-detection.ts';

class FakeClock implements OutlierClock {
  t = 1_000;
  readonly timers = new Map<number, { fn: () => void; ms: number; next: number }>();
  #id = 0;
  now(): number {
    return this.t;
  }
  setInterval(fn: () => void, ms: number): unknown {
    const id = ++this.#id;
    this.timers.set(id, { fn, ms, next: this.t + ms });
    return id;
  }
  clearInterval(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  /** Moves time on, firing interval timers in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let due: { fn: () => void; ms: number; next: number } | undefined;
      for (const t of this.timers.values()) if (t.next <= end && (!due || t.next < due.next)) due = t;
      if (!due) break;
      this.t = due.next;
      due.next += due.ms;
      due.fn();
    }
    this.t = end;
  }
}

function endpoints(n: number): Endpoint[] {
  return Array.from({ length: n }, (_, i) => ({
    ip: `127.0.160.${i + 1}`,
    port: 8080,
    identity: 'spiffe://cluster.local/ns/default/sa/echo',
    ready: true,
    serving: true,
    terminating: false,
  }));
}

const OD: OutlierDetectionPolicy = {
  consecutive5xxErrors: 1,
  consecutiveGatewayErrors: 0,
  consecutiveLocalOriginFailures: 0,
  splitExternalLocalOriginErrors: false,
  intervalMs: 10_000,
  baseEjectionTimeMs: 30_000,
  maxEjectionTimeMs: 300_000,
  maxEjectionPercent: 100,
  minHealthPercent: 0,
};

function cluster(eps: readonly Endpoint[], od: Partial<OutlierDetectionPolicy> = {}): Cluster {
  return {
    name: 'inbound-vip|8080|http|echo.default.svc.cluster.local',
    service: { namespace: 'default', name: 'echo', hostname: 'echo.default.svc.cluster.local', labels: {} },
    port: 8080,
    protocol: 'http',
    subset: undefined,
    endpoints: eps,
    policy: { ...DEFAULT_TRAFFIC_POLICY, outlierDetection: { ...OD, ...od } },
  };
}

function setup(n: number, od: Partial<OutlierDetectionPolicy> = {}) {
  const clock = new FakeClock();
  const ejections: EjectionEvent[] = [];
  const returns: string[] = [];
  const detector = new OutlierDetector({
    clock,
    onEject: (e) => ejections.push(e),
    onUnEject: (e) => returns.push(e.host),
  });
  const eps = endpoints(n);
  const c = cluster(eps, od);
  const healthy = () => detector.healthy(c, eps).map(hostKey);
  return { clock, detector, eps, c, healthy, ejections, returns, host: (i: number) => hostKey(eps[i]!) };
}

describe('consecutive 5xx', () => {
  it('ejects after one 5xx and brings the host back after baseEjectionTime', () => {
    const { detector, c, healthy, clock, host, ejections, returns } = setup(3);
    detector.report(c, host(0), { kind: 'status', status: 500 });
    expect(healthy()).toEqual([host(1), host(2)]);
    expect(ejections).toEqual([
      { cluster: c.name, host: host(0), type: 'consecutive_5xx', ejections: 1, durationMs: 30_000 },
    ]);
    clock.advance(29_999);
    expect(healthy()).not.toContain(host(0));
    clock.advance(1);
    expect(healthy()).toContain(host(0));
    expect(returns).toEqual([host(0)]);
  });

  it('un-ejects on the interval sweep without a pick', () => {
    const { detector, c, clock, host, returns } = setup(3);
    detector.report(c, host(0), { kind: 'status', status: 503 });
    clock.advance(30_000);
    expect(returns).toEqual([host(0)]);
    expect(detector.isEjected(c.name, host(0))).toBe(false);
  });

  it('ejects for 2x the base time the second time, and the multiplier decays on healthy sweeps', () => {
    const { detector, c, healthy, clock, host, ejections } = setup(3);
    detector.report(c, host(0), { kind: 'status', status: 500 });
    clock.advance(30_000);
    detector.report(c, host(0), { kind: 'status', status: 500 });
    expect(ejections[1]!.durationMs).toBe(60_000);
    clock.advance(59_999);
    expect(healthy()).not.toContain(host(0));
    clock.advance(1);
    expect(healthy()).toContain(host(0));
    // Healthy for long enough that every sweep decrements the multiplier back to 0: base again.
    clock.advance(60_000);
    detector.report(c, host(0), { kind: 'status', status: 500 });
    expect(ejections[2]!.durationMs).toBe(30_000);
  });

  it('caps the ejection time at maxEjectionTime', () => {
    const { detector, c, clock, host, ejections } = setup(3, { maxEjectionTimeMs: 70_000 });
    for (let i = 0; i < 5; i++) {
      detector.report(c, host(0), { kind: 'status', status: 500 });
      clock.advance(ejections.at(-1)!.durationMs);
    }
    expect(ejections.map((e) => e.durationMs)).toEqual([30_000, 60_000, 70_000, 70_000, 70_000]);
    // The multiplier stopped growing at 4 (Envoy: while multiplier × base < max + base), so three
    // healthy sweeps bring it to 1 and the next ejection lasts 2 × base, not the cap.
    clock.advance(30_000);
    detector.report(c, host(0), { kind: 'status', status: 500 });
    expect(ejections.at(-1)!.durationMs).toBe(60_000);
  });

  it('a success resets the counter', () => {
    const { detector, c, healthy, host } = setup(3, { consecutive5xxErrors: 3 });
    const fail = () => detector.report(c, host(0), { kind: 'status', status: 500 });
    fail();
    fail();
    detector.report(c, host(0), { kind: 'status', status: 200 });
    fail();
    fail();
    expect(healthy()).toContain(host(0));
    fail();
    expect(healthy()).not.toContain(host(0));
  });

  it('starts every consecutive count from zero when a host comes back', () => {
    const { detector, c, healthy, clock, host } = setup(3, {
      consecutive5xxErrors: 3,
      consecutiveGatewayErrors: 3,
      splitExternalLocalOriginErrors: true,
      consecutiveLocalOriginFailures: 3,
    });
    const report = (outcome: Parameters<typeof detector.report>[2], times: number) => {
      for (let i = 0; i < times; i++) detector.report(c, host(0), outcome);
    };
    report({ kind: 'status', status: 500 }, 3);
    expect(healthy()).not.toContain(host(0));
    // Requests still in flight at the ejection fail while it lasts: two of each kind, one short.
    report({ kind: 'status', status: 500 }, 2);
    report({ kind: 'status', status: 502 }, 2);
    report({ kind: 'localOriginFailure' }, 2);
    clock.advance(30_000);
    expect(healthy()).toContain(host(0));
    // Back with clean counts: one more failure of any kind is not a third in a row.
    report({ kind: 'status', status: 502 }, 1);
    report({ kind: 'localOriginFailure' }, 1);
    expect(healthy()).toContain(host(0));
  });

  it('counts local-origin failures unless split', () => {
    const a = setup(3, { consecutive5xxErrors: 2 });
    a.detector.report(a.c, a.host(0), { kind: 'localOriginFailure' });
    a.detector.report(a.c, a.host(0), { kind: 'status', status: 500 });
    expect(a.healthy()).not.toContain(a.host(0));

    const b = setup(3, {
      consecutive5xxErrors: 2,
      splitExternalLocalOriginErrors: true,
      consecutiveLocalOriginFailures: 2,
    });
    b.detector.report(b.c, b.host(0), { kind: 'localOriginFailure' });
    b.detector.report(b.c, b.host(0), { kind: 'status', status: 500 });
    expect(b.healthy()).toContain(b.host(0));
    b.detector.report(b.c, b.host(0), { kind: 'localOriginFailure' });
    b.detector.report(b.c, b.host(0), { kind: 'localOriginFailure' });
    expect(b.healthy()).not.toContain(b.host(0));
    expect(b.ejections[0]!.type).toBe('consecutive_local_origin_failure');
  });

  it('does nothing without an outlierDetection policy', () => {
    const detector = new OutlierDetector({ clock: new FakeClock() });
    const eps = endpoints(2);
    const c: Cluster = { ...cluster(eps), policy: DEFAULT_TRAFFIC_POLICY };
    for (let i = 0; i < 10; i++) detector.report(c, hostKey(eps[0]!), { kind: 'status', status: 500 });
    expect(detector.healthy(c, eps)).toBe(eps);
  });
});

describe('consecutive gateway errors', () => {
  it('counts 502/503/504 and local-origin failures; a 500 breaks the run', () => {
    const { detector, c, healthy, host, ejections } = setup(3, {
      consecutive5xxErrors: 0,
      consecutiveGatewayErrors: 3,
    });
    const put = (status: number) => detector.report(c, host(0), { kind: 'status', status });
    put(502);
    put(503);
    put(500);
    put(504);
    detector.report(c, host(0), { kind: 'localOriginFailure' });
    expect(healthy()).toContain(host(0));
    put(503);
    expect(healthy()).not.toContain(host(0));
    expect(ejections[0]!.type).toBe('consecutive_gateway_failure');
  });
});

describe('maxEjectionPercent', () => {
  it('stops ejecting once another ejection would exceed the share (Envoy: 100 × (ejected + 1) / hosts)', () => {
    const { detector, c, healthy, host } = setup(4, { maxEjectionPercent: 50 });
    for (let i = 0; i < 4; i++) detector.report(c, host(i), { kind: 'status', status: 500 });
    expect(healthy()).toEqual([host(2), host(3)]);
  });

  it('ejects nothing when one host is already more than the share (10% of 5 hosts)', () => {
    const { detector, c, healthy, host } = setup(5, { maxEjectionPercent: 10 });
    detector.report(c, host(0), { kind: 'status', status: 500 });
    expect(healthy()).toHaveLength(5);
  });
});

describe('panic and exhaustion', () => {
  it('ignores ejections when the healthy share falls below minHealthPercent', () => {
    const { detector, c, healthy, host } = setup(4, { minHealthPercent: 60 });
    detector.report(c, host(0), { kind: 'status', status: 500 });
    expect(healthy()).toHaveLength(3); // 75% healthy: no panic
    detector.report(c, host(1), { kind: 'status', status: 500 });
    expect(healthy()).toHaveLength(4); // 50% < 60%: panic, all hosts
  });

  it('leaves no candidate when every host is ejected and panic is off', () => {
    const { detector, c, healthy, host } = setup(2);
    detector.report(c, host(0), { kind: 'status', status: 500 });
    detector.report(c, host(1), { kind: 'status', status: 500 });
    expect(healthy()).toEqual([]);
  });
});

describe('lifecycle', () => {
  it('runs a sweep timer only while something is ejected or decaying, and none after close', () => {
    const { detector, c, clock, host } = setup(3);
    expect(clock.timers.size).toBe(0);
    detector.report(c, host(0), { kind: 'status', status: 500 });
    expect(clock.timers.size).toBe(1);
    clock.advance(30_000 + 20_000);
    expect(clock.timers.size).toBe(0);
    detector.report(c, host(1), { kind: 'status', status: 500 });
    detector.close();
    expect(clock.timers.size).toBe(0);
  });

  it('forgets hosts that left the cluster, so they no longer count as ejected', () => {
    const { detector, c, eps, host } = setup(2, { maxEjectionPercent: 50 });
    detector.report(c, host(0), { kind: 'status', status: 500 });
    const next = cluster([eps[1]!, ...endpoints(3).slice(2)], { maxEjectionPercent: 50 });
    expect(detector.healthy(next, next.endpoints)).toHaveLength(2);
    detector.report(next, host(1), { kind: 'status', status: 500 });
    expect(detector.healthy(next, next.endpoints).map(hostKey)).toEqual([hostKey(next.endpoints[1]!)]);
  });
});
