// The upstream stack, read top to bottom: what happens to a request between the filter chain and
// the endpoint. Later layers (timeouts, retries, circuit breaking, outlier ejection) slot in above
// `pickEndpoint` in this one list.
import { ProxyError } from '../pipeline/proxy-error.ts';
import type { EndpointPicker } from './endpoint-picker.ts';
import type { Http1Upstream } from './http1-upstream.ts';
import type { Http2Upstream } from './http2-upstream.ts';
import type { Send, UpstreamLayer } from './types.ts';

export function compose(layers: readonly UpstreamLayer[], last: Send): Send {
  return layers.reduceRight<Send>((next, layer) => layer(next), last);
}

/** Chooses the endpoint (LEAST_REQUEST) and keeps it counted as busy until the response is over. */
export function pickEndpoint(picker: EndpointPicker): UpstreamLayer {
  return (next) => async (req, ctx) => {
    const candidates = picker.candidates(ctx.tunnel.binding, ctx.tunnel.destination.port);
    const endpoint = picker.pick(candidates);
    if (!endpoint) {
      const b = ctx.tunnel.binding;
      const what =
        b.kind === 'service'
          ? `Service ${b.service.namespace}/${b.service.name} port ${b.port}`
          : `pod ${b.pod.namespace}/${b.pod.name}`;
      throw new ProxyError('no_healthy_upstream', `${what} has no ready endpoint`, { retryable: false });
    }
    req.endpoint = endpoint;
    const release = picker.begin(endpoint);
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
  };
}

/** The bottom of the stack: HTTP/1.1 through undici or HTTP/2 through Node, both over HBONE. */
export function transport(http1: Http1Upstream, http2: Http2Upstream, upgrade: Send): Send {
  return (req, ctx) => {
    if (req.protocol === 'http1') return http1.send(req, ctx);
    if (req.protocol === 'http2') return http2.send(req, ctx);
    return upgrade(req, ctx);
  };
}
