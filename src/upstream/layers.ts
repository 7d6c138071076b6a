// The upstream stack, read top to bottom: what happens to a request between the filter chain and
// the endpoint. Timeouts and retries slot in above `pickEndpoint` in this one list; endpoint
// selection itself (circuit breaking, outlier ejection, load balancing) is in endpoint-picker.ts,
// described in README.md "Endpoint selection".
import type { RequestContext } from '../pipeline/context.ts';
import { isProxyError, ProxyError } from '../pipeline/proxy-error.ts';
import type { Reason } from '../pipeline/reasons.ts';
import type { Cluster } from './cluster.ts';
import type { EndpointPicker } from './endpoint-picker.ts';
import type { Http1Upstream } from './http1-upstream.ts';
import type { Http2Upstream } from './http2-upstream.ts';
import { hostKey } from './load-balancer.ts';
import { onSettled, withHeaders } from './settled-response.ts';
import type { Send, UpstreamLayer, UpstreamRequest, UpstreamResponse } from './types.ts';

export function compose(layers: readonly UpstreamLayer[], last: Send): Send {
  return layers.reduceRight<Send>((next, layer) => layer(next), last);
}

/** Reasons that are locally originated failures of an attempt, as Envoy's outlier detector counts them. */
const LOCAL_ORIGIN_FAILURES: ReadonlySet<Reason> = new Set<Reason>([
  'upstream_connect_failure',
  'upstream_remote_reset',
  'upstream_connection_termination',
  'upstream_protocol_error',
  'upstream_request_timeout',
]);

/**
 * Chooses the endpoint and keeps it counted as busy until the response is over. With a routed
 * cluster (ctx.target): circuit-breaker request limit, outlier ejections, the cluster's load
 * balancer and the attempt's excluded hosts, and the attempt's outcome goes to the outlier
 * detector. Without one: the tunnel's binding, LEAST_REQUEST.
 */
export function pickEndpoint(picker: EndpointPicker): UpstreamLayer {
  return (next) => (req, ctx) => {
    const cluster = ctx.target?.cluster;
    if (!cluster) return sendToBinding(picker, next, req, ctx);
    // An HTTP/1 request over maxConnections waits here for a connection (Envoy's pending request).
    const acquired = picker.breakers.tryAcquireRequest(cluster, req.protocol, req.signal ?? ctx.signal);
    if (acquired instanceof Promise)
      return acquired.then((slot) => sendToCluster(picker, next, req, ctx, cluster, slot));
    return sendToCluster(picker, next, req, ctx, cluster, acquired);
  };
}

/** Pod-addressed traffic: LEAST_REQUEST over the tunnel's own binding. */
async function sendToBinding(
  picker: EndpointPicker,
  next: Send,
  req: UpstreamRequest,
  ctx: RequestContext,
): Promise<UpstreamResponse> {
  const endpoint = picker.pick(
    picker.candidates(ctx.tunnel.binding, ctx.tunnel.destination.port),
    req.excludeHosts,
  );
  if (!endpoint) {
    const b = ctx.tunnel.binding;
    const what =
      b.kind === 'service'
        ? `Service ${b.service.namespace}/${b.service.name} port ${b.port}`
        : `pod ${b.pod.namespace}/${b.pod.name}`;
    throw new ProxyError('no_healthy_upstream', `${what} has no ready endpoint`, { retryable: false });
  }
  req.endpoint = endpoint;
  const busy = picker.begin(endpoint);
  try {
    return onSettled(await next(req, ctx), busy);
  } catch (err) {
    busy();
    throw err;
  }
}

/** A routed cluster: the breaker slot is taken; choose, send, and tell the outlier detector. */
async function sendToCluster(
  picker: EndpointPicker,
  next: Send,
  req: UpstreamRequest,
  ctx: RequestContext,
  cluster: Cluster,
  slot: (() => void) | 'overflow',
): Promise<UpstreamResponse> {
  // Overflow fails at once: no retry, no outlier accounting (l7-semantics.md §5.2).
  if (slot === 'overflow')
    throw new ProxyError('upstream_overflow', `cluster ${cluster.name} is at its request limit`, {
      retryable: false,
    });
  const choice = picker.choose(
    cluster,
    { headers: ctx.headers, path: ctx.path, sourceIp: ctx.tunnel.source.ip },
    req.excludeHosts,
  );
  if (choice.kind === 'none') {
    slot();
    throw new ProxyError(
      'no_healthy_upstream',
      choice.ejected
        ? `cluster ${cluster.name}: every endpoint is ejected by outlier detection`
        : `cluster ${cluster.name} has no ready endpoint`,
      { retryable: false },
    );
  }
  const endpoint = choice.endpoint;
  req.endpoint = endpoint;
  const busy = picker.begin(endpoint);
  let res: UpstreamResponse;
  try {
    res = await next(req, ctx);
  } catch (err) {
    busy();
    slot();
    reportFailure(picker, cluster, hostKey(endpoint), req, ctx, err);
    throw err;
  }
  res = onSettled(onSettled(res, busy), slot);
  picker.outlier.report(cluster, hostKey(endpoint), { kind: 'status', status: res.status });
  if (choice.setCookie === undefined) return res;
  const prior = res.headers['set-cookie'] ?? [];
  return withHeaders(res, { ...res.headers, 'set-cookie': [...prior, choice.setCookie] });
}

/**
 * A failure of the attempt itself, or the attempt abandoned by a timeout above (its own signal
 * aborted while the client is still there): Envoy's LocalOriginConnectFailed/Timeout.
 */
function reportFailure(
  picker: EndpointPicker,
  cluster: Cluster,
  host: string,
  req: UpstreamRequest,
  ctx: RequestContext,
  err: unknown,
): void {
  const failed = isProxyError(err) && err.side === 'upstream' && LOCAL_ORIGIN_FAILURES.has(err.reason);
  if (!ctx.signal.aborted && (failed || req.signal?.aborted))
    picker.outlier.report(cluster, host, { kind: 'localOriginFailure' });
}

/** The bottom of the stack: HTTP/1.1 through undici or HTTP/2 through Node, both over HBONE. */
export function transport(http1: Http1Upstream, http2: Http2Upstream, upgrade: Send): Send {
  return (req, ctx) => {
    if (req.protocol === 'http1') return http1.send(req, ctx);
    if (req.protocol === 'http2') return http2.send(req, ctx);
    return upgrade(req, ctx);
  };
}
