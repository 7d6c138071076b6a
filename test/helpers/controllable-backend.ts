// An HTTP backend whose behaviour is scripted per request, for resilience tests: one server per
// pod (each behind its ztunnel stand-in), a script deciding for every request whether to wait,
// which status to answer, or to reset / close the connection instead, and per-pod records of what
// arrived (count, body bytes). Tests change the script between cases with `script()` and clear the
// records with `clear()`.
import { createHash } from 'node:crypto';
import http from 'node:http';
import { PassThrough } from 'node:stream';
import type { TestMesh } from './mesh.ts';

export interface Behaviour {
  /** Wait this long after the request body ended before acting. */
  readonly delayMs?: number;
  /** Default 200. */
  readonly status?: number;
  readonly body?: string;
  readonly headers?: http.OutgoingHttpHeaders;
  /**
   * `respond` (default); `reset`: TCP RST before any response byte; `close`: FIN before any
   * response byte; `truncate`: the head and part of the body, then a TCP RST.
   */
  readonly action?: 'respond' | 'reset' | 'close' | 'truncate';
}

export interface Arrival {
  readonly pod: string;
  readonly method: string;
  readonly path: string;
  /** Request body bytes received. */
  readonly bytes: number;
  /** sha256 of the request body, to compare replays. */
  readonly sha256: string;
  readonly headers: http.IncomingHttpHeaders;
}

/** Decides what the pod does with its n-th request (0-based, counted per pod since the last clear). */
export type Script = (req: {
  pod: string;
  n: number;
  path: string;
  headers: http.IncomingHttpHeaders;
}) => Behaviour | undefined;

export interface PodDef {
  readonly name: string;
  readonly ip: string;
  readonly identity: string;
}

export class ControllableBackend {
  #script: Script = () => undefined;
  readonly arrivals: Arrival[] = [];
  readonly #perPod = new Map<string, number>();

  /** Starts one server per pod on ip:port, each behind a ztunnel stand-in of `mesh`. */
  static async start(mesh: TestMesh, port: number, pods: readonly PodDef[]): Promise<ControllableBackend> {
    const backend = new ControllableBackend();
    for (const p of pods) await mesh.pod(p.ip, port, backend.#server(p.name), p.identity);
    return backend;
  }

  /** Replaces the script (and forgets what arrived so far). */
  script(fn: Script): void {
    this.#script = fn;
    this.clear();
  }

  /** Every request gets `b`, whatever the pod. */
  always(b: Behaviour): void {
    this.script(() => b);
  }

  clear(): void {
    this.arrivals.length = 0;
    this.#perPod.clear();
  }

  /** Requests that reached `pod` (or any pod) since the last clear, including those reset. */
  count(pod?: string): number {
    return pod === undefined ? this.arrivals.length : this.arrivals.filter((a) => a.pod === pod).length;
  }

  #server(pod: string): http.Server {
    return http.createServer((req, res) => {
      const n = this.#perPod.get(pod) ?? 0;
      this.#perPod.set(pod, n + 1);
      const behaviour = this.#script({ pod, n, path: req.url ?? '/', headers: req.headers }) ?? {};
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (c: Buffer) => {
        bytes += c.length;
        hash.update(c);
      });
      req.on('end', () => {
        this.arrivals.push({
          pod,
          method: req.method ?? '',
          path: req.url ?? '/',
          bytes,
          sha256: hash.digest('hex'),
          headers: req.headers,
        });
        const act = (): void => {
          if (behaviour.action === 'reset') {
            req.socket.resetAndDestroy();
            return;
          }
          if (behaviour.action === 'close') {
            req.socket.destroy();
            return;
          }
          if (behaviour.action === 'truncate') {
            res.writeHead(behaviour.status ?? 200, { 'content-type': 'text/plain', 'content-length': 1000 });
            res.write('partial', () => setTimeout(() => req.socket.resetAndDestroy(), 20));
            return;
          }
          const body = behaviour.body ?? JSON.stringify({ pod, n, bytes });
          res.writeHead(behaviour.status ?? 200, {
            'content-type': 'application/json',
            'x-pod': pod,
            ...behaviour.headers,
          });
          res.end(body);
        };
        if (behaviour.delayMs) {
          const timer = setTimeout(act, behaviour.delayMs);
          // The waypoint gave up (timeout, client gone): do not answer into a closed socket.
          res.on('close', () => clearTimeout(timer));
        } else act();
      });
    });
  }
}

/** Access-log lines written by a waypoint (pass `stream` as accessLogStream, accessLog 'all'). */
export function accessLogCapture(): {
  stream: PassThrough;
  lines: string[];
  lineFor: (requestId: string) => Promise<string>;
} {
  const lines: string[] = [];
  const stream = new PassThrough();
  stream.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
  // The line is written once the exchange completed, which may be just after the client saw it.
  const lineFor = async (requestId: string): Promise<string> => {
    for (let i = 0; i < 200; i++) {
      const line = lines.find((l) => l.includes(`"${requestId}"`));
      if (line) return line;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no access-log line for request ${requestId}`);
  };
  return { stream, lines, lineFor };
}

/** The response-flags field of an Istio-format access-log line, text or JSON (`UT`, `UF,URX`, `-`). */
export function flagsOf(line: string): string {
  if (line.startsWith('{')) return String((JSON.parse(line) as { response_flags: string }).response_flags);
  const m = /^\[[^\]]+\] "[^"]*" \d+ (\S+) /.exec(line);
  if (!m) throw new Error(`not an access-log line: ${line}`);
  return m[1]!;
}

/** What a test sees of one request sent through the waypoint by `requester`. */
export interface Sent {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  /** Set when the response body failed (a reset after the head). */
  readonly error: Error | undefined;
  readonly ms: number;
  /** The request's access-log line. */
  line(): Promise<string>;
}

/**
 * Sends requests as the sleep pod through `waypoint()` to a Service VIP on port 80, one connection
 * pool per VIP reused across requests, each with its own x-request-id (`PREFIX-N`) so its
 * access-log line can be found.
 */
export function requester(opts: {
  /** Read at the first request (the mesh and waypoint are made in beforeAll). */
  mesh: () => TestMesh;
  waypoint: () => {
    readonly addresses: { readonly hbone: { readonly ip: string; readonly port: number } } | undefined;
  };
  log: ReturnType<typeof accessLogCapture>;
  prefix: string;
  client: string;
}): (vip: string, path: string, req?: { method?: string; body?: Buffer }) => Promise<Sent> {
  const pools = new Map<string, ReturnType<TestMesh['httpPool']>>();
  let seq = 0;
  return async (vip, path, req = {}) => {
    let pool = pools.get(vip);
    if (!pool) {
      const mesh = opts.mesh();
      pool = mesh.httpPool(await mesh.hboneClient(opts.client), opts.waypoint().addresses!.hbone, {
        ip: vip,
        port: 80,
      });
      pools.set(vip, pool);
    }
    const requestId = `${opts.prefix}-${++seq}`;
    const started = performance.now();
    const res = await pool.request({
      method: req.method ?? 'GET',
      path,
      headers: { host: 'svc', 'x-request-id': requestId },
      body: req.body ?? null,
      headersTimeout: 15_000,
      bodyTimeout: 15_000,
    });
    let body = '';
    let error: Error | undefined;
    try {
      body = await res.body.text();
    } catch (err) {
      error = err as Error;
    }
    const ms = performance.now() - started;
    return {
      status: res.statusCode,
      headers: res.headers,
      body,
      error,
      ms,
      line: () => opts.log.lineFor(requestId),
    };
  };
}
