// Test doubles for upstream layers: a scripted `next: Send` that records every attempt, fake
// responses, and a minimal request context. No sockets.
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { RequestContext } from '../pipeline/context.ts';
import type { ProxyError } from '../pipeline/proxy-error.ts';
import type { Cluster } from './cluster.ts';
import { DEFAULT_TRAFFIC_POLICY } from './cluster.ts';
import { NO_RETRY, NO_TIMEOUTS, type RetryPolicy, type Timeouts, type UpstreamTarget } from './target.ts';
import type { ResponseSink, Send, UpstreamRequest, UpstreamResponse } from './types.ts';

export interface FakeResponse extends UpstreamResponse {
  discarded: boolean;
  streamed: boolean;
}

/** A response head whose body is `body` (sent in one chunk when streamed). */
export function fakeResponse(
  status: number,
  opts: { headers?: IncomingHttpHeaders; host?: string; body?: string; hold?: Promise<void> } = {},
): FakeResponse {
  const res: FakeResponse = {
    status,
    headers: opts.headers ?? {},
    upstreamHost: opts.host ?? '10.0.0.1:8080',
    discarded: false,
    streamed: false,
    async stream(sink: ResponseSink) {
      res.streamed = true;
      if (opts.body) sink.write(Buffer.from(opts.body));
      if (opts.hold) await opts.hold;
      sink.end(undefined);
    },
    discard() {
      res.discarded = true;
    },
  };
  return res;
}

/** One scripted attempt: a response, a failure, or a function of the request. */
export type Step =
  | FakeResponse
  | ProxyError
  | ((req: UpstreamRequest) => Promise<UpstreamResponse> | UpstreamResponse);

export interface AttemptRecord {
  readonly req: UpstreamRequest;
  /** The request body as this attempt read it (when it had one). */
  body: Promise<string> | undefined;
}

/**
 * A fake transport: each call takes the next step (the last repeats). Each attempt's body is read
 * to its end, and the endpoint `10.0.0.<n>:8080` (n = attempt number) is set as the pick layer would.
 */
export function scriptedSend(steps: readonly Step[], opts: { readBody?: boolean } = {}) {
  const calls: AttemptRecord[] = [];
  const send: Send = async (req) => {
    const i = calls.length;
    const record: AttemptRecord = { req, body: undefined };
    calls.push(record);
    req.endpoint = { ip: `10.0.0.${i + 1}`, port: 8080 } as UpstreamRequest['endpoint'];
    if (req.body && opts.readBody !== false) record.body = drain(req.body, req.onBodyChunk);
    const step = steps[Math.min(i, steps.length - 1)]!;
    if (typeof step === 'function') return step(req);
    if (step instanceof Error) {
      if (record.body) await record.body.catch(() => '');
      throw step;
    }
    if (record.body) await record.body.catch(() => '');
    return step;
  };
  return { send, calls };
}

export async function drain(body: Readable, onChunk?: (c: Buffer) => void): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of body) {
    const b = Buffer.isBuffer(c) ? c : Buffer.from(c as string);
    onChunk?.(b);
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString();
}

/** A response that never arrives unless the attempt's signal aborts (then it rejects). */
export function hang(req: UpstreamRequest): Promise<UpstreamResponse> {
  return new Promise((_resolve, reject) => {
    req.signal?.addEventListener('abort', () => reject(req.signal?.reason), { once: true });
  });
}

export function testCluster(name = 'inbound-vip|8080|http|echo.ns.svc.cluster.local'): Cluster {
  return {
    name,
    service: {} as Cluster['service'],
    port: 8080,
    protocol: 'http',
    subset: undefined,
    endpoints: [],
    policy: DEFAULT_TRAFFIC_POLICY,
  } as Cluster;
}

export function testTarget(
  opts: { retry?: Partial<RetryPolicy>; timeouts?: Partial<Timeouts>; routeName?: string } = {},
): UpstreamTarget {
  return {
    cluster: testCluster(),
    timeouts: { ...NO_TIMEOUTS, ...opts.timeouts },
    retry: { ...NO_RETRY, ...opts.retry },
    mirrors: [],
    routeName: opts.routeName ?? 'ns.route.0',
  };
}

export function testContext(
  opts: { target?: UpstreamTarget; headers?: IncomingHttpHeaders; grpc?: boolean; signal?: AbortSignal } = {},
): RequestContext {
  return {
    id: 'req-1',
    startNs: 0n,
    method: 'POST',
    path: '/',
    originalPath: '/',
    authority: 'echo.ns.svc.cluster.local',
    protocol: 'HTTP/1.1',
    grpc: opts.grpc ?? false,
    headers: opts.headers ?? {},
    signal: opts.signal ?? new AbortController().signal,
    attributes: new Map(),
    explain: [],
    target: opts.target,
    readBody: () => Promise.resolve({ bytes: Buffer.alloc(0), complete: true }),
  } as unknown as RequestContext;
}

export function testRequest(
  opts: { body?: Readable | null; headers?: Record<string, string> } = {},
): UpstreamRequest & {
  counted: number;
} {
  const req = {
    method: 'POST',
    path: '/',
    headers: opts.headers ?? {},
    body: opts.body ?? null,
    protocol: 'http1' as const,
    counted: 0,
    onBodyChunk: (c: Buffer) => {
      req.counted += c.length;
    },
  };
  return req;
}

/** A sink that collects what it is given. */
export function collectingSink() {
  const out = { chunks: [] as Buffer[], ended: false, aborted: undefined as Error | undefined };
  const sink: ResponseSink = {
    write(c) {
      out.chunks.push(c);
      return true;
    },
    onDrain() {},
    end() {
      out.ended = true;
    },
    abort(err) {
      out.aborted = err;
    },
  };
  return { sink, out };
}
