// Request mirroring (HTTPRoute RequestMirror, VirtualService mirror/mirrors): a fire-and-forget
// copy of the request to another cluster; its response is dropped and nothing about it reaches the
// client. The copy never slows the primary: it gets the body chunks as the primary reads them, and
// is abandoned when it falls more than MIRROR_BUFFER_BYTES behind. Envoy appends
// `-shadow` to the mirrored authority so the mirror's app can tell copies apart.
import { PassThrough, Transform } from 'node:stream';
import type { RequestContext } from '../pipeline/context.ts';
import { type Mirror, NO_RETRY, NO_TIMEOUTS } from './target.ts';
import type { Send, UpstreamLayer, UpstreamRequest, UpstreamResponse } from './types.ts';

export const MIRROR_BUFFER_BYTES = 1024 * 1024;
/** A mirrored request still unanswered after this is abandoned. */
export const MIRROR_TIMEOUT_MS = 30_000;

export interface MirrorOptions {
  readonly random?: () => number;
  /** Told about each mirror that failed (for a log line or a counter); never affects the primary. */
  readonly onError?: (mirror: Mirror, err: unknown) => void;
}

export function mirror(opts: MirrorOptions = {}): UpstreamLayer {
  const random = opts.random ?? Math.random;
  return (next: Send): Send =>
    (req, ctx) => {
      const mirrors = ctx.target?.mirrors;
      if (!mirrors || mirrors.length === 0) return next(req, ctx);
      const chosen = mirrors.filter((m) => m.fraction >= 1 || (m.fraction > 0 && random() < m.fraction));
      if (chosen.length === 0) return next(req, ctx);
      const copies = chosen.map((m) => startCopy(m, req, ctx, next, opts.onError));
      ctx.explain.push(`mirrored to ${chosen.map((m) => m.cluster.name).join(', ')}`);
      if (!req.body) return next(req, ctx);
      // The body passes through a tee at the primary's pace: each chunk the primary takes is handed
      // to the copies without waiting for them.
      const source = req.body;
      const tee = new Transform({
        transform(chunk: Buffer, _enc, done) {
          for (const c of copies) c.write(chunk);
          done(null, chunk);
        },
        flush(done) {
          for (const c of copies) c.end();
          done();
        },
      });
      // The primary's transport reports body failures; one that refused the body never reads it.
      tee.on('error', () => {});
      source.once('error', (err) => tee.destroy(err));
      tee.once('close', () => {
        for (const c of copies) c.endIfUnfinished();
      });
      source.pipe(tee);
      const primary: UpstreamRequest = { ...req, body: tee };
      return next(primary, ctx).finally(() => {
        // The engine reads which endpoint answered from its own request object.
        req.endpoint = primary.endpoint;
      });
    };
}

interface Copy {
  write(chunk: Buffer): void;
  end(): void;
  /** The primary's body closed without ending: the copy's body is cut short. */
  endIfUnfinished(): void;
}

function startCopy(
  m: Mirror,
  req: UpstreamRequest,
  ctx: RequestContext,
  next: Send,
  onError: MirrorOptions['onError'],
): Copy {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new Error('mirror timed out')), MIRROR_TIMEOUT_MS);
  timer.unref();
  const body = req.body ? new PassThrough() : null;
  void next(copyRequest(req, ctx, body, abort.signal), copyContext(m, ctx, abort.signal))
    .then((res: UpstreamResponse) => res.stream(DROP))
    .catch((err: unknown) => {
      if (!abort.signal.aborted) onError?.(m, err);
    })
    .finally(() => {
      clearTimeout(timer);
      body?.destroy();
    });
  return copyBody(body, abort);
}

/** The copy's request: the primary's, its authority marked `-shadow`, an HTTP request even for an upgrade. */
function copyRequest(
  req: UpstreamRequest,
  ctx: RequestContext,
  body: PassThrough | null,
  signal: AbortSignal,
): UpstreamRequest {
  const headers = { ...req.headers };
  const authority = (headers.host ?? headers[':authority'] ?? ctx.authority) as string;
  delete headers[':authority'];
  headers.host = shadowAuthority(authority);
  return {
    method: req.method,
    path: req.path,
    headers,
    body,
    protocol: req.protocol === 'upgrade' ? 'http1' : req.protocol,
    onBodyChunk: () => {},
    signal,
  };
}

/** The copy's context: the mirror's cluster, no timeouts, no retries, no mirrors of its own. */
function copyContext(m: Mirror, ctx: RequestContext, signal: AbortSignal): RequestContext {
  return {
    ...ctx,
    signal,
    attributes: new Map(),
    explain: [],
    target: {
      cluster: m.cluster,
      timeouts: NO_TIMEOUTS,
      retry: NO_RETRY,
      mirrors: [],
      routeName: ctx.target?.routeName,
    },
  };
}

/** Feeds the copy's body from the tee, giving the copy up when it falls behind. */
function copyBody(body: PassThrough | null, abort: AbortController): Copy {
  let ended = false;
  return {
    write(chunk) {
      if (!body || body.destroyed) return;
      if (body.writableLength > MIRROR_BUFFER_BYTES) {
        // The copy fell behind: give it up rather than hold memory or the primary.
        abort.abort(new Error('mirror fell behind'));
        body.destroy();
        return;
      }
      body.write(chunk);
    },
    end() {
      ended = true;
      if (body && !body.destroyed) body.end();
    },
    endIfUnfinished() {
      if (!ended) {
        abort.abort(new Error('primary request body did not complete'));
        body?.destroy();
      }
    },
  };
}

/** `echo` → `echo-shadow`, `echo:8080` → `echo-shadow:8080` (Envoy's shadow host). */
export function shadowAuthority(authority: string): string {
  const m = /^(\[[^\]]*\]|[^:]*)(:\d+)?$/.exec(authority);
  if (!m) return `${authority}-shadow`;
  return `${m[1]}-shadow${m[2] ?? ''}`;
}

const DROP = {
  write: () => true,
  onDrain: () => {},
  end: () => {},
  abort: () => {},
};
