// One CLIENT span per upstream attempt (below retry, so each retry is its own span), child of the
// request's SERVER span; the attempt's request carries that span as its parent. An untraced
// request passes straight through, and an unsampled one only has its context written out.

import { formatAuthority } from '../hbone/authority.ts';
import { endSpan, type ServerTrace, serverTrace } from '../observe/tracing.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { isProxyError } from '../pipeline/proxy-error.ts';
import { REASONS } from '../pipeline/reasons.ts';
import type { Send, UpstreamLayer, UpstreamRequest, UpstreamResponse } from './types.ts';

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
  let requestSize = 0;
  const traced: UpstreamRequest = {
    ...req,
    onBodyChunk: (chunk) => {
      requestSize += chunk.length;
      req.onBodyChunk(chunk);
    },
  };
  const outcome = (status: number, flag: string, responseSize: number) => ({
    status,
    responseFlags: flag,
    upstreamCluster: ctx.target?.cluster.name,
    upstreamAddress: traced.endpoint ? formatAuthority(traced.endpoint.ip, traced.endpoint.port) : undefined,
    requestSize,
    responseSize,
  });
  let res: UpstreamResponse;
  try {
    res = await next(traced, ctx);
  } catch (err) {
    endSpan(span, outcome(0, isProxyError(err) ? REASONS[err.reason].flag : '-', 0));
    throw err;
  } finally {
    // The retry and endpoint layers read what the layers below set on the request.
    if (traced.endpoint) req.endpoint = traced.endpoint;
  }
  let responseSize = 0;
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    endSpan(span, outcome(res.status, '-', responseSize));
  };
  return {
    ...res,
    stream: (sink) =>
      res
        .stream({
          write: (chunk) => {
            responseSize += chunk.length;
            return sink.write(chunk);
          },
          onDrain: (resume) => sink.onDrain(resume),
          end: (trailers) => sink.end(trailers),
          abort: (err) => sink.abort(err),
        })
        .finally(end),
    discard: () => {
      end();
      res.discard();
    },
  };
}
