import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { UsageError } from './flags.ts';
import { runArgsOfIstioProxy } from './istio-proxy-args.ts';

describe("Istio's `proxy waypoint` arguments", () => {
  it('keeps the cluster domain, log level and concurrency of the 1.22–1.25 template and ignores the rest', () => {
    // As files/waypoint.yaml renders them for a Gateway in namespace shop.
    const argv = [
      'waypoint',
      '--domain',
      'shop.svc.cluster.local',
      '--serviceCluster',
      'waypoint.shop',
      '--proxyLogLevel',
      'warning',
      '--proxyComponentLogLevel',
      'misc:error',
      '--log_output_level',
      'default:info',
      '--concurrency=2',
    ];
    expect(runArgsOfIstioProxy(argv, {})).toEqual([
      '--cluster-domain',
      'cluster.local',
      '--log-level',
      'warn',
      '--concurrency',
      '2',
    ]);
  });

  it("takes Envoy's worker count from ProxyConfig (PROXY_CONFIG) when pilot-agent's flag does not set it", () => {
    const env = (concurrency: unknown) => ({
      PROXY_CONFIG: JSON.stringify({ concurrency, drainDuration: '5s' }),
    });
    expect(runArgsOfIstioProxy(['waypoint'], env(3))).toEqual(['--concurrency', '3']);
    expect(runArgsOfIstioProxy(['waypoint', '--concurrency', '2'], env(3))).toEqual(['--concurrency', '2']);
    // 0: every core of the machine, as Envoy's --concurrency 0.
    expect(runArgsOfIstioProxy(['waypoint'], env(0))).toEqual([
      '--concurrency',
      String(availableParallelism()),
    ]);
    // Unset, odd or unreadable: run's own default (the container's CPU quota).
    expect(runArgsOfIstioProxy(['waypoint'], { PROXY_CONFIG: '{"drainDuration":"5s"}' })).toEqual([]);
    expect(runArgsOfIstioProxy(['waypoint'], env(-1))).toEqual([]);
    expect(runArgsOfIstioProxy(['waypoint'], env('2'))).toEqual([]);
    expect(runArgsOfIstioProxy(['waypoint'], { PROXY_CONFIG: '{' })).toEqual([]);
  });

  it('accepts --flag=value, and needs nothing', () => {
    expect(runArgsOfIstioProxy(['waypoint', '--domain=a.svc.corp.example'], {})).toEqual([
      '--cluster-domain',
      'corp.example',
    ]);
    expect(runArgsOfIstioProxy(['waypoint'], {})).toEqual([]);
  });

  it('refuses a proxy kind it is not (a sidecar, a router)', () => {
    expect(() => runArgsOfIstioProxy(['sidecar'])).toThrow(UsageError);
  });
});
