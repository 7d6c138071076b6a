// The upstream stack, read top to bottom: what happens to a request between the filter chain and
// the endpoint. Timeouts and retries slot in above `pickEndpoint` in this one list; endpoint
// selection itself (circuit breaking, outlier ejection, load balancing) is in endpoint-picker.ts,
// described in README.md "Endpoint selection".
import type { RequestContext } from '../pipeline/context.ts';
import { isProxyError, ProxyError } from '../pipeline/proxy-error.ts';
import type { Reason } from '../pipeline/reasons.ts';
import type { EndpointPicker } from './endpoint-picker.ts';
import type { Http1Upstream } from './http1-upstream.ts';
import type { Http2Upstream } from './http2-upstream.ts';
import { hostKey } from './load-balancer.ts';
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
  return (next) => async (req, ctx) => {
    const cluster = ctx.target?.cluster;
    if (!cluster) {
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
      return counted(next, req, ctx, picker.begin(endpoint));
    }

    // Overflow fails at once: no retry, no outlier accounting (l7-semantics.md §5.2).
    // An HTTP/1 request over maxConnections waits here for a connection (Envoy's pending request).
    const acquired = picker.breakers.tryAcquireRequest(cluster, req.protocol, req.signal ?? ctx.signal);
    const slot = acquired instanceof Promise ? await acquired : acquired;
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
    const host = hostKey(endpoint);
    const busy = picker.begin(endpoint);
    const release = () => {
      busy();
      slot();
    };
    let res: UpstreamResponse;
    try {
      res = await counted(next, req, ctx, release);
    } catch (err) {
      // A failure of the attempt itself, or the attempt abandoned by a timeout above (its own
      // signal aborted while the client is still there): Envoy's LocalOriginConnectFailed/Timeout.
      const failed = isProxyError(err) && err.side === 'upstream' && LOCAL_ORIGIN_FAILURES.has(err.reason);
      if (!ctx.signal.aborted && (failed || req.signal?.aborted))
        picker.outlier.report(cluster, host, { kind: 'localOriginFailure' });
      throw err;
    }
    picker.outlier.report(cluster, host, { kind: 'status', status: res.status });
    if (choice.setCookie === undefined) return res;
    const prior = res.headers['set-cookie'] ?? [];
    return { ...res, headers: { ...res.headers, 'set-cookie': [...prior, choice.setCookie] } };
  };
}

/** Sends, holding `release` until the response body has ended or been discarded (or the send failed). */
async function counted(
  next: Send,
  req: UpstreamRequest,
  ctx: RequestContext,
  release: () => void,
): Promise<UpstreamResponse> {
  try {
    const res = await next(req, ctx);
    return {
      ...res,
      stream: (sink) => res.stream(sink).finally(release),
      discard: () => {
        release();
        res.discard();
      },
    };
  } catch (err) {
    release();
    throw err;
  }
}

/** The bottom of the stack: HTTP/1.1 through undici or HTTP/2 through Node, both over HBONE. */
export function transport(http1: Http1Upstream, http2: Http2Upstream, upgrade: Send): Send {
  return (req, ctx) => {
    if (req.protocol === 'http1') return http1.send(req, ctx);
    if (req.protocol === 'http2') return http2.send(req, ctx);
    return upgrade(req, ctx);
  };
}
