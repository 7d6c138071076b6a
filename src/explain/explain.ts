// `explain`: what the waypoint would decide for a hypothetical request, by the proxy's own engine.
// The destination is resolved through the snapshot's bindings as a CONNECT would be, the request
// context is built by the engine's helper, and the snapshot's real filter chain runs over it (path
// normalization, JWT, authorization); the result reads the chain's verdict and ctx.explain. Nothing
// here decides anything itself, nor knows any filter: each filter's explain hook adds its own part
// (authz: the policies attached and each rule re-checked, filters/authz/explain.ts). Used by
// `node-waypoint explain` and the admin port's POST /debug/explain.
import { isIP } from 'node:net';
import type { Snapshot } from '../../config/model.ts';
import { formatAuthority, type HostPort, parseAuthority } from '../hbone/authority.ts';
import { parseSpiffeId } from '../identity/spiffe.ts';
import type { Logger } from '../observe/logger.ts';
import { FilterChain } from '../pipeline/chain.ts';
import type { Binding, TunnelInfo } from '../pipeline/context.ts';
import { type FilterFactory, NO_FILTER_METRICS, type Verdict } from '../pipeline/filter.ts';
import { newRequestContext } from '../proxy/request-context.ts';

export interface ExplainInput {
  /** The caller's SPIFFE URI. */
  readonly from: string;
  /** `name.namespace:port`, a Service FQDN with port, `VIP:port` or `podIP:port`. */
  readonly to: string;
  readonly method?: string;
  readonly path?: string;
  /** Request headers (names are lower-cased). `host` sets the authority (default: `to`). */
  readonly headers?: Readonly<Record<string, string>>;
  /** The client address the tunnel reports (default 127.0.0.1). */
  readonly sourceIp?: string;
}

/** Bad input (a usage error on the command line, 400 on the admin port). */
export class ExplainInputError extends Error {
  override name = 'ExplainInputError';
}

/** The destination is not a Service port or pod this waypoint serves. */
export class ExplainDestinationError extends Error {
  override name = 'ExplainDestinationError';
}

export interface ExplainResult {
  readonly request: {
    readonly from: string;
    readonly to: string;
    readonly method: string;
    readonly path: string;
    readonly authority: string;
    readonly headers: Readonly<Record<string, string>>;
    readonly sourceIp: string;
  };
  readonly destination: {
    readonly kind: 'service' | 'workload';
    /** `NS/NAME` of the Service or pod. */
    readonly name: string;
    readonly address: string;
    readonly port: number;
    readonly protocol: string;
    /** `http`: the request filter chain; `tcp`: the network phase (tcp/tls ports). */
    readonly phase: 'http' | 'tcp';
  };
  /** Each filter's own fields (authz: policies, order, rules, decisions), after `destination`. */
  readonly [field: string]: unknown;
  /** ctx.explain: every decision of the chain, in order. */
  readonly explain: readonly string[];
  readonly allowed: boolean;
  readonly reason?: string;
  readonly detail?: string;
  /** `allowed` or `denied: DETAIL`. */
  readonly verdict: string;
}

const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Checks an explain request (e.g. a parsed JSON body); throws ExplainInputError naming the field. */
export function checkExplainInput(v: unknown): ExplainInput {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new ExplainInputError('expected a JSON object {from, to, method, path, headers, sourceIp}');
  const o = v as Record<string, unknown>;
  const str = (k: string, required: boolean): string | undefined => {
    const x = o[k];
    if (x === undefined || x === null) {
      if (required) throw new ExplainInputError(`${k}: required`);
      return undefined;
    }
    if (typeof x !== 'string') throw new ExplainInputError(`${k}: expected a string`);
    return x;
  };
  const headers: Record<string, string> = {};
  if (o.headers !== undefined && o.headers !== null) {
    if (typeof o.headers !== 'object' || Array.isArray(o.headers))
      throw new ExplainInputError('headers: expected an object of strings');
    for (const [k, x] of Object.entries(o.headers as Record<string, unknown>)) {
      if (typeof x !== 'string') throw new ExplainInputError(`headers.${k}: expected a string`);
      headers[k] = x;
    }
  }
  const input: ExplainInput = {
    from: str('from', true)!,
    to: str('to', true)!,
    ...(str('method', false) !== undefined ? { method: str('method', false)! } : {}),
    ...(str('path', false) !== undefined ? { path: str('path', false)! } : {}),
    headers,
    ...(str('sourceIp', false) !== undefined ? { sourceIp: str('sourceIp', false)! } : {}),
  };
  validate(input);
  return input;
}

function validate(input: ExplainInput): void {
  if (!parseSpiffeId(input.from))
    throw new ExplainInputError(`from: expected spiffe://TD/ns/NS/sa/SA, got ${JSON.stringify(input.from)}`);
  if (input.method !== undefined && !METHOD.test(input.method))
    throw new ExplainInputError(`method: not an HTTP method: ${JSON.stringify(input.method)}`);
  if (input.path !== undefined && !input.path.startsWith('/'))
    throw new ExplainInputError(`path: must start with /, got ${JSON.stringify(input.path)}`);
  if (input.sourceIp !== undefined && isIP(input.sourceIp) === 0)
    throw new ExplainInputError(`sourceIp: not an IP address: ${JSON.stringify(input.sourceIp)}`);
  splitTo(input.to);
}

function splitTo(to: string): { host: string; port: number } {
  const ip = parseAuthority(to);
  if (ip) return { host: ip.ip, port: ip.port };
  const m = /^([A-Za-z0-9]([-.A-Za-z0-9]*[A-Za-z0-9])?):(\d{1,5})$/.exec(to);
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65535)
    throw new ExplainInputError(
      `to: expected SERVICE.NAMESPACE:PORT, a Service FQDN with port, VIP:PORT or POD_IP:PORT, got ${JSON.stringify(to)}`,
    );
  return { host: m[1]!.toLowerCase(), port };
}

/** The binding a CONNECT to `to` would get, and the address it would carry. */
export function resolveDestination(
  snapshot: Snapshot,
  to: string,
): { binding: Binding; destination: HostPort } {
  const { host, port } = splitTo(to);
  const served = `waypoint ${snapshot.gateway.ref.namespace}/${snapshot.gateway.ref.name}`;
  if (isIP(host) !== 0) {
    const key = formatAuthority(host, port);
    const binding = snapshot.services.get(key) ?? snapshot.workloads.get(host);
    if (!binding)
      throw new ExplainDestinationError(`${key} is not a Service VIP:port or pod bound to ${served}`);
    return { binding, destination: { ip: host, port } };
  }
  const h = host.replace(/\.$/, '');
  for (const [key, b] of snapshot.services) {
    const s = b.service;
    const names = [`${s.name}.${s.namespace}`, `${s.name}.${s.namespace}.svc`, s.hostname.toLowerCase()];
    if (b.port === port && names.includes(h)) {
      const addr = parseAuthority(key);
      if (addr) return { binding: b, destination: addr };
    }
  }
  throw new ExplainDestinationError(`${to} is not a Service port bound to ${served}`);
}

function verdictText(v: Verdict): string {
  if (v.kind === 'continue') return 'allowed';
  if (v.reason === 'authz_denied') return `denied: ${v.detail ?? 'authz_denied'}`;
  return `denied: ${v.reason}${v.detail ? ` (${v.detail})` : ''}`;
}

/** The text paragraphs of each result's filters (kept out of the JSON). */
const filterText = new WeakMap<ExplainResult, ReadonlyArray<readonly string[]>>();

/** The request explain runs, resolved as the waypoint would resolve it. */
interface ExplainRequest {
  readonly request: ExplainResult['request'];
  readonly destination: ExplainResult['destination'];
  readonly tunnel: TunnelInfo;
}

/** Runs the snapshot's filter chain over the request; the chain is built from `factories`, as the engine does. */
export async function explainRequest(
  snapshot: Snapshot,
  factories: readonly FilterFactory[],
  input: ExplainInput,
  log: Logger,
): Promise<ExplainResult> {
  validate(input);
  const q = explainedRequest(snapshot, input);
  // A chain of its own: explaining counts nothing, and filters keep what their explain hook reads.
  const chain = FilterChain.build(factories, snapshot, log, {
    log,
    metrics: NO_FILTER_METRICS,
    explaining: true,
  });
  const { verdict, explain, ctx } = await runChain(chain, q);
  const explanations = chain.explanations({ phase: q.destination.phase, tunnel: q.tunnel, ctx, verdict });
  const result: ExplainResult = {
    request: q.request,
    destination: q.destination,
    ...Object.assign({}, ...explanations.map((e) => e.fields)),
    explain,
    allowed: verdict.kind === 'continue',
    ...(verdict.kind === 'reply'
      ? { reason: verdict.reason, ...(verdict.detail ? { detail: verdict.detail } : {}) }
      : {}),
    verdict: verdictText(verdict),
  };
  filterText.set(
    result,
    explanations.map((e) => e.text),
  );
  return result;
}

function explainedRequest(snapshot: Snapshot, input: ExplainInput): ExplainRequest {
  const peer = parseSpiffeId(input.from)!;
  const { binding, destination } = resolveDestination(snapshot, input.to);
  const sourceIp = input.sourceIp ?? '127.0.0.1';
  const method = (input.method ?? 'GET').toUpperCase();
  const path = input.path ?? '/';
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.headers ?? {})) headers[k.toLowerCase()] = v;
  const authority = headers.host ?? input.to;
  headers.host = authority;
  const protocol = binding.kind === 'service' ? binding.protocol : 'unknown';
  return {
    request: { from: peer.uri, to: input.to, method, path, authority, headers, sourceIp },
    destination: {
      kind: binding.kind,
      name:
        binding.kind === 'service'
          ? `${binding.service.namespace}/${binding.service.name}`
          : `${binding.pod.namespace}/${binding.pod.name}`,
      address: destination.ip,
      port: destination.port,
      protocol,
      phase: protocol === 'tcp' || protocol === 'tls' ? 'tcp' : 'http',
    },
    tunnel: { binding, snapshot, peer, source: { ip: sourceIp, port: 0 }, destination },
  };
}

/** The TCP phase for tcp/tls ports, else the request phase over a context the engine's helper builds. */
async function runChain(chain: FilterChain, q: ExplainRequest) {
  if (q.destination.phase === 'tcp') {
    const explain: string[] = [];
    const verdict = await chain.onTcpConnection(q.tunnel, explain);
    return { verdict, explain, ctx: undefined };
  }
  const ctx = newRequestContext({
    id: 'explain',
    startNs: process.hrtime.bigint(),
    tunnel: q.tunnel,
    method: q.request.method,
    path: q.request.path,
    authority: q.request.authority,
    protocol: 'HTTP/1.1',
    // The same object: the report shows the headers as the chain left them (as it always has).
    headers: q.request.headers as Record<string, string>,
    signal: new AbortController().signal,
  });
  const verdict = await chain.onRequestHeaders(ctx);
  return { verdict, explain: ctx.explain, ctx };
}

/** The human-readable form. */
export function formatExplain(r: ExplainResult): string {
  const lines: string[] = [];
  const q = r.request;
  lines.push(`Request:      ${q.method} ${q.path} (authority ${q.authority})`);
  lines.push(`From:         ${q.from} (source ${q.sourceIp})`);
  const d = r.destination;
  lines.push(
    `Destination:  ${d.kind === 'service' ? 'Service' : 'pod'} ${d.name} at ${formatAuthority(d.address, d.port)}, protocol ${d.protocol} (${d.phase === 'tcp' ? 'TCP: network phase, HTTP-only fields cannot match' : 'HTTP filter chain'})`,
  );
  lines.push('');
  for (const paragraph of filterText.get(r) ?? []) lines.push(...paragraph, '');
  lines.push('Decisions:');
  for (const e of r.explain) lines.push(`  ${e}`);
  if (r.explain.length === 0) lines.push('  (none recorded)');
  lines.push('');
  lines.push(`Verdict: ${r.verdict}`);
  return `${lines.join('\n')}\n`;
}
