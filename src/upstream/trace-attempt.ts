// One CLIENT span per upstream attempt (below retry, so each retry is its own span), child of the
// request's SERVER span; the attempt's request carries that span as its parent. An untraced
// request passes straight through, and an unsampled one only has its context written out.

import { endSpan, type ServerTrace, serverTrace } from '../observe/tracing.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { isProxyError } from '../pipeline/proxy-error.ts';
import { REASONS } from '../pipeline/reasons.ts';
import { hostKey } from './load-balancer.ts';
import type { ResponseSink, Send, UpstreamLayer, UpstreamRequest, UpstreamResponse } from './types.ts';

export function traceAttempt(): UpstreamLayer {
  return (next) => (req, ctx) => {
    const server = serverTrace(ctx);
    if (!server) return next(req, ctx);
    if (!server.span.isRecording()) {
      server.tracing.propagate(server, req.headers as Record<string, unknown>);
      return next(req, ctx);
    }
    return tracedAttempt(next, req, ctx, server);
  };
}

async function tracedAttempt(
  next: Send,
  req: UpstreamRequest,
  ctx: RequestContext,
  server: ServerTrace,
): Promise<UpstreamResponse> {
  const url = `http://${ctx.authority}${req.path}`;
  const span = server.tracing.startClient(server, req.method, url, req.headers as Record<string, unknown>);
  const sizes = { request: 0, response: 0 };
  const traced: UpstreamRequest = {
    ...req,
    onBodyChunk: (chunk) => {
      sizes.request += chunk.length;
      req.onBodyChunk(chunk);
    },
  };
  const end = (status: number, flag: string): void =>
    endSpan(span, {
      status,
      responseFlags: flag,
      upstreamCluster: ctx.target?.cluster.name,
      upstreamAddress: traced.endpoint ? hostKey(traced.endpoint) : undefined,
      requestSize: sizes.request,
      responseSize: sizes.response,
    });
  let res: UpstreamResponse;
  try {
    res = await next(traced, ctx);
  } catch (err) {
    end(0, isProxyError(err) ? REASONS[err.reason].flag : '-');
    throw err;
  } finally {
    // The retry and endpoint layers read what the layers below set on the request.
    if (traced.endpoint) req.endpoint = traced.endpoint;
  }
  return countedResponse(res, sizes, () => end(res.status, '-'));
}

/** The response, its body bytes counted into sizes, `end` called once when it is over. */
function countedResponse(
  res: UpstreamResponse,
  sizes: { response: number },
  end: () => void,
): UpstreamResponse {
  let ended = false;
  const once = (): void => {
    if (ended) return;
    ended = true;
    end();
  };
  const counting: ResponseSink = {
    write: (chunk) => {
      sizes.response += chunk.length;
      return sink!.write(chunk);
    },
    onDrain: (resume) => sink!.onDrain(resume),
    end: (trailers) => sink!.end(trailers),
    abort: (err) => sink!.abort(err),
  };
  let sink: ResponseSink | undefined;
  return {
    status: res.status,
    headers: res.headers,
    upstreamHost: res.upstreamHost,
    ...(res.endStream === undefined ? {} : { endStream: res.endStream }),
    stream: (s) => {
      sink = s;
      return res.stream(counting).finally(once);
    },
    discard: () => {
      once();
      res.discard();
    },
  };
}
