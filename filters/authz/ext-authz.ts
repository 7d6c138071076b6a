// ext_authz clients: the decision of an external authorization provider over gRPC (Envoy's
// envoy.service.auth.v3.Authorization/Check, protos in ./proto) or HTTP (Envoy's raw HTTP
// ext_authz service), as Istio's CUSTOM action configures Envoy's ext_authz filter. The service
// is dialled directly by address: a waypoint is not captured by ztunnel.
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { RequestContext, TunnelInfo } from '../../src/pipeline/context.ts';
import { HOP_BY_HOP } from '../../src/proxy/headers.ts';
import type { ExtensionProvider, GrpcProvider, HttpProvider } from './mesh-config.ts';

/** A provider whose service has been resolved to an address in this snapshot. */
export interface ResolvedProvider {
  readonly provider: ExtensionProvider;
  readonly ip: string;
}

export type HeaderMutation = {
  readonly name: string;
  readonly value: string;
  /** append: add to an existing value; overwrite: replace or add; add-if-absent; overwrite-if-exists. */
  readonly mode: 'append' | 'overwrite' | 'add-if-absent' | 'overwrite-if-exists';
};

/** The request body sent with a check (includeRequestBodyInCheck): its first maxRequestBytes. */
export interface CheckBody {
  readonly bytes: Buffer;
  /** The body goes on past `bytes` (allowPartialMessage). */
  readonly partial: boolean;
  /** gRPC: `raw_body` bytes instead of the `body` string. */
  readonly packAsBytes: boolean;
}

/** Envoy's header on a check that carries a body: whether the body was cut at maxRequestBytes. */
export const PARTIAL_BODY_HEADER = 'x-envoy-auth-partial-body';

export type CheckResult =
  | {
      readonly kind: 'allow';
      readonly upstream: readonly HeaderMutation[];
      readonly remove: readonly string[];
      readonly downstream: readonly HeaderMutation[];
    }
  | {
      readonly kind: 'deny';
      readonly status: number;
      readonly headers: OutgoingHttpHeaders;
      readonly body: string;
    }
  | { readonly kind: 'error'; readonly why: string };

export const PROTO_DIR = fileURLToPath(new URL('./proto', import.meta.url));
export const EXTERNAL_AUTH_PROTO = 'envoy/service/auth/v3/external_auth.proto';

/** proto-loader options used by the client (and the tests' server): camelCase fields, oneofs named. */
export const PROTO_OPTIONS = {
  includeDirs: [PROTO_DIR],
  longs: String,
  enums: Number,
  defaults: true,
  oneofs: true,
};

type GrpcModule = typeof import('@grpc/grpc-js');

interface GrpcStub {
  Check(
    req: unknown,
    opts: { deadline: number },
    cb: (err: (Error & { code?: number; details?: string }) | null, res?: CheckResponse) => void,
  ): { cancel(): void };
  close(): void;
}

interface HeaderValueOption {
  header?: { key?: string; value?: string; rawValue?: Buffer } | null;
  append?: { value?: boolean } | null;
  appendAction?: number;
}

interface CheckResponse {
  status?: { code?: number; message?: string } | null;
  deniedResponse?: { status?: { code?: number } | null; headers?: HeaderValueOption[]; body?: string } | null;
  okResponse?: {
    headers?: HeaderValueOption[];
    headersToRemove?: string[];
    responseHeadersToAdd?: HeaderValueOption[];
  } | null;
}

let grpcLoad:
  | Promise<{ grpc: GrpcModule; Authorization: new (target: string, creds: unknown) => GrpcStub }>
  | undefined;

/** Loads @grpc/grpc-js and the protos once, on the first gRPC provider. */
async function loadGrpc() {
  grpcLoad ??= (async () => {
    const grpc = await import('@grpc/grpc-js');
    const loader = await import('@grpc/proto-loader');
    const def = loader.loadSync(EXTERNAL_AUTH_PROTO, PROTO_OPTIONS);
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      envoy: {
        service: { auth: { v3: { Authorization: new (target: string, creds: unknown) => GrpcStub } } };
      };
    };
    return { grpc, Authorization: pkg.envoy.service.auth.v3.Authorization };
  })();
  return grpcLoad;
}

/** `a` headers as Envoy's CheckRequest carries them: lower-case names, repeated values joined with `,`. */
function flatHeaders(ctx: RequestContext): Record<string, string> {
  const out: Record<string, string> = {
    ':authority': ctx.authority,
    ':method': ctx.method,
    ':path': ctx.path,
    ':scheme': 'http',
  };
  for (const [k, v] of Object.entries(ctx.headers)) {
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? v.join(',') : v;
  }
  return out;
}

function requestId(ctx: RequestContext): string {
  const v = ctx.headers['x-request-id'];
  return typeof v === 'string' && v ? v : ctx.id;
}

function socketAddress(ip: string, port: number) {
  return { socketAddress: { address: ip, portValue: port } };
}

/** The CheckRequest Envoy sends (AttributeContext source, destination, request.http). */
export function checkRequest(ctx: RequestContext, body?: CheckBody): unknown {
  const t = ctx.tunnel;
  const now = Date.now();
  const size = ctx.headers['content-length'];
  const headers = flatHeaders(ctx);
  let withBody: { body: string } | { rawBody: Buffer } | undefined;
  if (body) {
    headers[PARTIAL_BODY_HEADER] = String(body.partial);
    withBody = body.packAsBytes ? { rawBody: body.bytes } : { body: body.bytes.toString('utf8') };
  }
  return {
    attributes: {
      source: { address: socketAddress(t.source.ip, t.source.port), principal: t.peer.uri },
      destination: { address: socketAddress(t.destination.ip, t.destination.port) },
      request: {
        time: { seconds: String(Math.floor(now / 1000)), nanos: (now % 1000) * 1_000_000 },
        http: {
          id: requestId(ctx),
          method: ctx.method,
          headers,
          path: ctx.path,
          host: ctx.authority,
          scheme: 'http',
          size: typeof size === 'string' && /^\d+$/.test(size) ? size : '-1',
          protocol: ctx.protocol,
          ...withBody,
        },
      },
    },
  };
}

/**
 * The CheckRequest of Envoy's network ext_authz filter (CheckRequestUtils::createTcpCheck): source
 * (address, principal) and destination (the CONNECT's original destination); no `request`.
 */
export function tcpCheckRequest(t: TunnelInfo): unknown {
  return {
    attributes: {
      source: { address: socketAddress(t.source.ip, t.source.port), principal: t.peer.uri },
      destination: { address: socketAddress(t.destination.ip, t.destination.port) },
    },
  };
}

function mutation(o: HeaderValueOption): HeaderMutation | undefined {
  const name = o.header?.key?.toLowerCase();
  if (!name) return undefined;
  const value = o.header?.value || o.header?.rawValue?.toString('utf8') || '';
  // In ext_authz responses `append` defaults to false (overwrite); append_action when set instead.
  let mode: HeaderMutation['mode'] = 'overwrite';
  if (o.append) mode = o.append.value ? 'append' : 'overwrite';
  else if (o.appendAction === 1) mode = 'add-if-absent';
  else if (o.appendAction === 3) mode = 'overwrite-if-exists';
  return { name, value, mode };
}

const mutations = (list: readonly HeaderValueOption[] | undefined): HeaderMutation[] =>
  (list ?? []).map(mutation).filter((m): m is HeaderMutation => m !== undefined);

/** Owns the connections to the providers (one gRPC channel or HTTP agent per provider address). */
export class ExtAuthzClients {
  readonly #grpc = new Map<string, Promise<GrpcStub>>();
  readonly #agents = new Map<string, http.Agent>();

  /** `body`: the request body to include (the provider's includeRequestBodyInCheck). */
  check(r: ResolvedProvider, ctx: RequestContext, body?: CheckBody): Promise<CheckResult> {
    return r.provider.kind === 'grpc'
      ? this.#checkGrpc(r.provider, r.ip, checkRequest(ctx, body), ctx.signal)
      : this.#checkHttp(r.provider, r.ip, ctx, body);
  }

  /**
   * Envoy's network ext_authz (TCP): gRPC providers only, the connection's attributes, no request.
   * A connection denied by the provider is closed, so the deny's status, headers and body are moot.
   */
  checkTcp(p: GrpcProvider, ip: string, tunnel: TunnelInfo, signal: AbortSignal): Promise<CheckResult> {
    return this.#checkGrpc(p, ip, tcpCheckRequest(tunnel), signal);
  }

  close(): void {
    for (const p of this.#grpc.values())
      p.then(
        (s) => s.close(),
        () => {},
      );
    this.#grpc.clear();
    for (const a of this.#agents.values()) a.destroy();
    this.#agents.clear();
  }

  async #stub(p: GrpcProvider, ip: string): Promise<GrpcStub> {
    const target = ip.includes(':') ? `[${ip}]:${p.port}` : `${ip}:${p.port}`;
    const key = `${p.name}|${target}`;
    let stub = this.#grpc.get(key);
    if (!stub) {
      stub = loadGrpc().then(
        ({ grpc, Authorization }) => new Authorization(target, grpc.credentials.createInsecure()),
      );
      this.#grpc.set(key, stub);
    }
    return stub;
  }

  async #checkGrpc(p: GrpcProvider, ip: string, request: unknown, signal: AbortSignal): Promise<CheckResult> {
    const stub = await this.#stub(p, ip);
    return new Promise<CheckResult>((resolve) => {
      let settled = false;
      const call = stub.Check(request, { deadline: Date.now() + p.timeoutMs }, (err, res) => {
        settled = true;
        signal.removeEventListener('abort', onAbort);
        if (err || !res) {
          resolve({
            kind: 'error',
            why: `gRPC ${err?.code ?? ''} ${err?.details ?? err?.message ?? 'no response'}`.trim(),
          });
          return;
        }
        const code = res.status?.code ?? 0;
        if (code === 0) {
          const ok = res.okResponse;
          resolve({
            kind: 'allow',
            upstream: mutations(ok?.headers),
            remove: (ok?.headersToRemove ?? []).map((h) => h.toLowerCase()),
            downstream: mutations(ok?.responseHeadersToAdd),
          });
          return;
        }
        const denied = res.deniedResponse;
        const headers: OutgoingHttpHeaders = {};
        for (const m of mutations(denied?.headers)) headers[m.name] = m.value;
        const status = denied?.status?.code;
        resolve({
          kind: 'deny',
          status: status && status >= 100 && status <= 599 ? status : 403,
          headers,
          body: denied?.body ?? '',
        });
      });
      const onAbort = (): void => {
        if (!settled) call.cancel();
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  #agent(p: HttpProvider, ip: string): http.Agent {
    const key = `${p.name}|${ip}:${p.port}`;
    let a = this.#agents.get(key);
    if (!a) {
      a = new http.Agent({ keepAlive: true });
      this.#agents.set(key, a);
    }
    return a;
  }

  #checkHttp(
    p: HttpProvider,
    ip: string,
    ctx: RequestContext,
    body: CheckBody | undefined,
  ): Promise<CheckResult> {
    // What Envoy's HTTP ext_authz sends: the original method, pathPrefix + the original path, the
    // allowed request headers (every header when no list is configured; with a list, those plus
    // Host, Authorization), the additional headers, and the body read for the check if any
    // (otherwise none, Content-Length 0).
    const headers: OutgoingHttpHeaders = {};
    const allowed = p.includeRequestHeadersInCheck;
    for (const [k, v] of Object.entries(ctx.headers)) {
      if (v === undefined || NOT_COPIED.has(k)) continue;
      if (allowed && k !== 'authorization' && !allowed(k)) continue;
      headers[k] = Array.isArray(v) ? v.join(',') : v;
    }
    for (const [k, v] of Object.entries(p.includeAdditionalHeadersInCheck)) headers[k] = v;
    headers.host = ctx.authority;
    if (body && !allowed) headers[PARTIAL_BODY_HEADER] = String(body.partial);
    headers['content-length'] = String(body?.bytes.length ?? 0);
    const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(p.timeoutMs)]);
    return new Promise<CheckResult>((resolve) => {
      const req = http.request(
        {
          host: ip,
          port: p.port,
          method: ctx.method,
          path: p.pathPrefix + ctx.path,
          headers,
          agent: this.#agent(p, ip),
          signal,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => resolve({ kind: 'error', why: `HTTP ${err.message}` }));
          res.on('end', () =>
            resolve(
              httpDecision(p, res.statusCode ?? 0, res.headers, Buffer.concat(chunks).toString('utf8')),
            ),
          );
        },
      );
      req.on('error', (err) =>
        resolve({
          kind: 'error',
          why: signal.aborted && !ctx.signal.aborted ? 'HTTP timeout' : `HTTP ${err.message}`,
        }),
      );
      req.end(body?.bytes);
    });
  }
}

/** Hop-by-hop headers, plus the framing the check request and the decision set for themselves. */
const NOT_COPIED: ReadonlySet<string> = new Set([...HOP_BY_HOP, 'content-length', 'expect']);

/** Envoy's raw HTTP ext_authz: 200 allows, any other status denies with that status. */
export function httpDecision(
  p: HttpProvider,
  status: number,
  headers: IncomingHttpHeaders,
  body: string,
): CheckResult {
  const pairs: Array<[string, string]> = [];
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || NOT_COPIED.has(k)) continue;
    pairs.push([k, Array.isArray(v) ? v.join(',') : v]);
  }
  const pick = (match: ((n: string) => boolean) | undefined): HeaderMutation[] =>
    match
      ? pairs.filter(([k]) => match(k)).map(([name, value]) => ({ name, value, mode: 'overwrite' as const }))
      : [];
  if (status === 200) {
    return {
      kind: 'allow',
      upstream: pick(p.headersToUpstreamOnAllow),
      remove: [],
      downstream: pick(p.headersToDownstreamOnAllow),
    };
  }
  const out: OutgoingHttpHeaders = {};
  const match = p.headersToDownstreamOnDeny;
  for (const [k, v] of pairs) {
    if (k === 'host' || k === 'date') continue;
    if (match && !match(k)) continue;
    out[k] = v;
  }
  return { kind: 'deny', status: status >= 100 && status <= 599 ? status : 403, headers: out, body };
}
