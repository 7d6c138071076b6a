import { describe, expect, it } from 'vitest';
import { UsageError } from './flags.ts';
import { runArgsOfIstioProxy } from './istio-proxy-args.ts';

describe("Istio's `proxy waypoint` arguments", () => {
  it('keeps the cluster domain and log level of the 1.22–1.25 template and ignores the rest', () => {
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
    expect(runArgsOfIstioProxy(argv)).toEqual(['--cluster-domain', 'cluster.local', '--log-level', 'warn']);
  });

  it('accepts --flag=value, and needs nothing', () => {
    expect(runArgsOfIstioProxy(['waypoint', '--domain=a.svc.corp.example'])).toEqual([
      '--cluster-domain',
      'corp.example',
    ]);
    expect(runArgsOfIstioProxy(['waypoint'])).toEqual([]);
  });

  it('refuses a proxy kind it is not (a sidecar, a router)', () => {
    expect(() => runArgsOfIstioProxy(['sidecar'])).toThrow(UsageError);
  });
});
