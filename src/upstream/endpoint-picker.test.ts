// The pickEndpoint layer with the picker's parts together: breaker, ejection, load balancing, and
// outcomes reported back. A fake `next` stands for the transport; no sockets.
import { describe, expect, it } from 'vitest';
import type { Endpoint } from '../../config/model.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { isProxyError, ProxyError } from '../pipeline/proxy-error.ts';
import {
  type Cluster,
  DEFAULT_CONNECTION_POOL,
  DEFAULT_TRAFFIC_POLICY,
  type TrafficPolicy,
} from './cluster.ts';
import { EndpointPicker } from './endpoint-picker.ts';
import { pickEndpoint } from './layers.ts';
import { hostKey } from './load-balancer.ts';
import { NO_RETRY, NO_TIMEOUTS } from './target.ts';
import type { Send, UpstreamRequest, UpstreamResponse } from './types.ts';

const EPS: Endpoint[] = [1, 2].map((i) => ({
  ip: `127.0.160.${i}`,
  port: 8080,
  identity: 'spiffe://cluster.local/ns/default/sa/echo',
  ready: true,
  serving: true,
  terminating: false,
}));

function cluster(policy: Partial<TrafficPolicy>): Cluster {
  return {
    name: 'inbound-vip|8080|http|echo.default.svc.cluster.local',
    service: { namespace: 'default', name: 'echo', hostname: 'echo.default.svc.cluster.local', labels: {} },
    port: 8080,
    protocol: 'http',
    subset: undefined,
    endpoints: EPS,
    policy: { ...DEFAULT_TRAFFIC_POLICY, ...policy },
  };
}

function context(c: Cluster, headers: Record<string, string> = {}): RequestContext {
  return {
    path: '/',
    headers,
    signal: new AbortController().signal,
    tunnel: { source: { ip: '127.0.161.1', port: 40000 } },
    target: { cluster: c, timeouts: NO_TIMEOUTS, retry: NO_RETRY, mirrors: [], routeName: undefined },
  } as unknown as RequestContext;
}

function request(excludeHosts?: ReadonlySet<string>): UpstreamRequest {
  return {
    method: 'GET',
    path: '/',
    headers: {},
    body: null,
    protocol: 'http2',
    onBodyChunk: () => {},
    excludeHosts,
  };
}

function response(status: number, host: string): UpstreamResponse {
  return {
    status,
    headers: {},
    upstreamHost: host,
    stream: async (sink) => sink.end(undefined),
    discard: () => {},
  };
}

const SINK = { write: () => true, onDrain: () => {}, end: () => {}, abort: () => {} };

/** A transport where each endpoint answers with its scripted status (or throws). */
function transport(script: Record<string, number | ProxyError>) {
  const hits: string[] = [];
  const send: Send = async (req) => {
    const host = hostKey(req.endpoint!);
    hits.push(host);
    const s = script[host] ?? 200;
    if (s instanceof ProxyError) throw s;
    return response(s, host);
  };
  return { send, hits };
}

async function reason(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return isProxyError(err) ? err.reason : String(err);
  }
}

const OUTLIER: TrafficPolicy['outlierDetection'] = {
  consecutive5xxErrors: 1,
  consecutiveGatewayErrors: 0,
  consecutiveLocalOriginFailures: 0,
  splitExternalLocalOriginErrors: false,
  intervalMs: 10_000,
  baseEjectionTimeMs: 30_000,
  maxEjectionPercent: 100,
  maxEjectionTimeMs: 300_000,
  minHealthPercent: 0,
};

describe('pickEndpoint with a routed cluster', () => {
  it('ejects an endpoint that answered 5xx, then answers no_healthy_upstream when all are out', async () => {
    const picker = new EndpointPicker();
    const c = cluster({ outlierDetection: OUTLIER, loadBalancer: { kind: 'ROUND_ROBIN' } });
    const t = transport({ [hostKey(EPS[0]!)]: 500 });
    const send = pickEndpoint(picker)(t.send);
    for (let i = 0; i < 2; i++) await send(request(), context(c));
    expect(picker.outlier.isEjected(c.name, hostKey(EPS[0]!))).toBe(true);
    t.hits.length = 0;
    for (let i = 0; i < 4; i++) await send(request(), context(c));
    expect(new Set(t.hits)).toEqual(new Set([hostKey(EPS[1]!)]));

    const failing = transport({ [hostKey(EPS[1]!)]: new ProxyError('upstream_connect_failure', 'refused') });
    expect(await reason(pickEndpoint(picker)(failing.send)(request(), context(c)))).toBe(
      'upstream_connect_failure',
    );
    expect(await reason(send(request(), context(c)))).toBe('no_healthy_upstream');
    picker.close();
  });

  it('answers upstream_overflow at the request limit and frees the slot when the body ends', async () => {
    const picker = new EndpointPicker();
    const c = cluster({ connectionPool: { ...DEFAULT_CONNECTION_POOL, http2MaxRequests: 1 } });
    const send = pickEndpoint(picker)(transport({}).send);
    const first = await send(request(), context(c));
    const err = await send(request(), context(c)).catch((e: unknown) => e);
    expect(isProxyError(err) && err.reason === 'upstream_overflow' && !err.retryable).toBe(true);
    await first.stream(SINK);
    expect((await send(request(), context(c))).status).toBe(200);
  });

  it('avoids the hosts the retry layer excludes', async () => {
    const picker = new EndpointPicker();
    const c = cluster({});
    const t = transport({});
    const send = pickEndpoint(picker)(t.send);
    for (let i = 0; i < 10; i++) await send(request(new Set([hostKey(EPS[0]!)])), context(c));
    expect(new Set(t.hits)).toEqual(new Set([hostKey(EPS[1]!)]));
  });

  it('adds the generated hash cookie to the response', async () => {
    const picker = new EndpointPicker();
    const c = cluster({
      loadBalancer: {
        kind: 'CONSISTENT_HASH',
        key: { kind: 'cookie', name: 'session', path: '/', ttlMs: 10_000 },
        algorithm: 'ringHash',
        tableSize: 1024,
      },
    });
    const send = pickEndpoint(picker)(transport({}).send);
    const res = await send(request(), context(c));
    expect(res.headers['set-cookie']).toEqual([
      expect.stringMatching(/^session="[0-9a-f]{16}"; Max-Age=10; Path=\/; HttpOnly$/),
    ]);
    const withCookie = await send(request(), context(c, { cookie: 'session=abc' }));
    expect(withCookie.headers['set-cookie']).toBeUndefined();
  });
});
