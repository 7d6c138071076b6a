// A small mesh on loopback for tests: a dev CA, certificate files, Kubernetes YAML in a temporary
// directory, application backends on pod IPs behind ztunnel stand-ins (HBONE on POD_IP:PORT), and
// a waypoint either in this process (module API) or as a child process driven through the CLI.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { ClientHttp2Stream } from 'node:http2';
import type { AddressInfo, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { Client, Pool } from 'undici';
import { WAYPOINT_NODE_FLAGS } from '../../src/cli/node-flags.ts';
import { type ComposeOptions, composeWaypoint } from '../../src/compose.ts';
import { formatAuthority, type HostPort } from '../../src/hbone/authority.ts';
import { HboneClient } from '../../src/hbone/client.ts';
import type { ConnectRequest } from '../../src/hbone/server.ts';
import { type Credentials, memoryCredentials } from '../../src/identity/credentials.ts';
import { createDevCa, type DevCa, devCertFileNames } from '../../src/identity/dev-ca.ts';
import { silentLogger } from '../../src/observe/logger.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { InboundTunnel } from '../../src/ztunnel/inbound.ts';
import { OutboundTunnel } from '../../src/ztunnel/outbound.ts';

export const ROOT = new URL('../..', import.meta.url).pathname;
export const NODE = join(ROOT, 'node_modules/.bin/node');
export const CLI = join(ROOT, 'bin/node-waypoint.js');
export const TD = 'cluster.local';
export const id = (ns: string, sa: string): string => `spiffe://${TD}/ns/${ns}/sa/${sa}`;

/** A namespace with a waypoint Gateway that takes service traffic. */
export function waypointYaml(ns = 'shop', name = 'waypoint', waypointFor = 'service'): string {
  return `apiVersion: v1
kind: Namespace
metadata:
  name: ${ns}
  labels:
    istio.io/use-waypoint: ${name}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: ${name}
  namespace: ${ns}
  labels:
    istio.io/waypoint-for: ${waypointFor}
spec:
  gatewayClassName: istio-waypoint
  listeners:
    - name: mesh
      port: 15008
      protocol: HBONE
`;
}

export interface PodSpec {
  readonly name: string;
  readonly ip: string;
  readonly sa?: string;
  readonly ready?: boolean;
}

/** A Service with a selector and its pods (endpoints derived from the pods, as kube does). */
export function serviceYaml(opts: {
  ns?: string;
  name: string;
  vip: string;
  port: number;
  targetPort?: number;
  portName?: string;
  appProtocol?: string;
  pods: readonly PodSpec[];
}): string {
  const ns = opts.ns ?? 'shop';
  const docs = [
    `apiVersion: v1
kind: Service
metadata:
  name: ${opts.name}
  namespace: ${ns}
spec:
  clusterIP: ${opts.vip}
  selector:
    app: ${opts.name}
  ports:
    - name: ${opts.portName ?? 'http'}
      port: ${opts.port}
      targetPort: ${opts.targetPort ?? opts.port}${opts.appProtocol ? `\n      appProtocol: ${opts.appProtocol}` : ''}
`,
  ];
  for (const p of opts.pods) {
    docs.push(`apiVersion: v1
kind: Pod
metadata:
  name: ${p.name}
  namespace: ${ns}
  labels:
    app: ${opts.name}
spec:
  serviceAccountName: ${p.sa ?? opts.name}
  containers:
    - name: app
      image: app
status:
  phase: Running
  podIP: ${p.ip}
  conditions:
    - type: Ready
      status: "${p.ready === false ? 'False' : 'True'}"
`);
  }
  return docs.join('---\n');
}

export interface WaypointProcess {
  readonly child: ChildProcess;
  readonly hbone: HostPort;
  readonly admin: HostPort;
  /** The --ready listener: /healthz/ready and nothing else. */
  readonly ready: HostPort;
  readonly metrics: HostPort;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  waitForStderr(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Its worker processes (--concurrency N); 1 for a single process. */
  readonly workers: number;
  /**
   * Waits until every worker has logged a line matching `pattern` (each drains, reloads its
   * certificate, applies its configuration on its own); with one process, that process.
   */
  waitForEachWorker(pattern: RegExp, timeoutMs?: number): Promise<string[]>;
}

export class TestMesh {
  readonly dir: string;
  readonly configDir: string;
  readonly ca: DevCa;
  readonly #closers: Array<() => Promise<unknown> | unknown> = [];
  #certFiles = 0;

  private constructor(dir: string, ca: DevCa) {
    this.dir = dir;
    this.configDir = join(dir, 'config');
    this.ca = ca;
  }

  static async create(): Promise<TestMesh> {
    const dir = await mkdtemp(join(tmpdir(), 'waypoint-test-'));
    const mesh = new TestMesh(dir, await createDevCa({ trustDomain: TD }));
    await writeFile(join(dir, 'root-cert.pem'), mesh.ca.rootPem);
    const { mkdir } = await import('node:fs/promises');
    await mkdir(mesh.configDir);
    return mesh;
  }

  get rootCertFile(): string {
    return join(this.dir, 'root-cert.pem');
  }

  async credentials(identity: string, ca?: DevCa): Promise<Credentials> {
    const issued = await (ca ?? this.ca).issue(identity);
    return memoryCredentials({ cert: issued.certChainPem, key: issued.keyPem, ca: this.ca.rootPem });
  }

  /**
   * Writes cert and key files for identity; returns their paths. Each call gets its own files, so
   * waypoints started at the same time never read a key written for another's certificate.
   */
  async certFiles(identity: string): Promise<{ cert: string; key: string; ca: string }> {
    const issued = await this.ca.issue(identity);
    const names = devCertFileNames(identity);
    const n = this.#certFiles++;
    const cert = join(this.dir, `${n}-${names.cert}`);
    const key = join(this.dir, `${n}-${names.key}`);
    await writeFile(cert, issued.certChainPem);
    await writeFile(key, issued.keyPem);
    return { cert, key, ca: this.rootCertFile };
  }

  async writeConfig(file: string, yaml: string): Promise<string> {
    const path = join(this.configDir, file);
    await writeFile(path, yaml);
    return path;
  }

  onClose(fn: () => Promise<unknown> | unknown): void {
    this.#closers.push(fn);
  }

  /** Puts a server on ip:port and a ztunnel stand-in on ip:hbonePort in front of it. */
  async pod(
    ip: string,
    port: number,
    server: Server,
    identity: string,
    opts: { hbonePort?: number; onTunnel?: (req: ConnectRequest) => void } = {},
  ): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, ip, () => resolve());
    });
    this.onClose(
      () =>
        new Promise<void>((r) => {
          (server as http.Server).closeAllConnections?.();
          server.close(() => r());
        }),
    );
    const inbound = new InboundTunnel({
      listen: { ip, port: opts.hbonePort ?? 15008 },
      credentials: await this.credentials(identity),
      log: silentLogger,
      ...(opts.onTunnel ? { onTunnel: opts.onTunnel } : {}),
    });
    await inbound.listen();
    this.onClose(() => inbound.close());
  }

  /**
   * Only the ztunnel stand-in on ip:hbonePort (for applications that bind their own listener on
   * the pod IP, such as a gRPC server). Tunnels go to the CONNECT :authority.
   */
  async standIn(
    ip: string,
    identity: string,
    opts: { hbonePort?: number; onTunnel?: (req: ConnectRequest) => void } = {},
  ): Promise<void> {
    const inbound = new InboundTunnel({
      listen: { ip, port: opts.hbonePort ?? 15008 },
      credentials: await this.credentials(identity),
      log: silentLogger,
      ...(opts.onTunnel ? { onTunnel: opts.onTunnel } : {}),
    });
    await inbound.listen();
    this.onClose(() => inbound.close());
  }

  /**
   * A ztunnel stand-in, outbound half: a plain TCP listener on `listen` whose connections are
   * tunnelled as `identity` through the waypoint to `destination`. Resolves with the bound address.
   */
  async outbound(opts: {
    listen: HostPort;
    waypoint: HostPort;
    destination: HostPort;
    identity: string;
    waypointIdentity?: string;
  }): Promise<HostPort> {
    const tunnel = new OutboundTunnel({
      listen: opts.listen,
      waypoint: opts.waypoint,
      waypointIdentity: opts.waypointIdentity ?? id('shop', 'waypoint'),
      destination: opts.destination,
      credentials: await this.credentials(opts.identity),
      log: silentLogger,
    });
    const bound = await tunnel.listen();
    this.onClose(() => tunnel.close());
    return bound;
  }

  /** An HTTP backend that answers JSON naming the pod, method, path and body size. */
  static echoServer(podName: string): http.Server {
    return http.createServer((req, res) => {
      let size = 0;
      req.on('data', (c: Buffer) => (size += c.length));
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'x-pod': podName });
        res.end(
          JSON.stringify({
            pod: podName,
            method: req.method,
            path: req.url,
            bytes: size,
            headers: req.headers,
          }),
        );
      });
    });
  }

  /**
   * A waypoint in this process. `ip` puts its HBONE, admin and metrics listeners on that address
   * (free ports); the default is 127.0.0.2.
   */
  async startWaypoint(
    opts: Partial<ComposeOptions> & { identity?: string; ip?: string } = {},
  ): Promise<Waypoint> {
    const { ip = '127.0.0.2', ...rest } = opts;
    const waypoint = composeWaypoint({
      configPaths: [this.configDir],
      gateway: { namespace: 'shop', name: 'waypoint' },
      hbone: { host: ip, port: 0 },
      admin: { host: ip, port: 0 },
      ready: { host: ip, port: 0 },
      metrics: { host: ip, port: 0 },
      credentials: await this.credentials(opts.identity ?? id('shop', 'waypoint')),
      endpointHbonePort: 15008,
      log: silentLogger,
      accessLog: 'off',
      defaultMetrics: false,
      drainDeadlineMs: 5_000,
      ...rest,
    });
    await waypoint.start();
    this.onClose(() => waypoint.close());
    return waypoint;
  }

  /** Runs `node-waypoint run` as a child process on ephemeral ports; resolves once it is ready. */
  async spawnWaypoint(
    args: string[] = [],
    opts: { identity?: string; hboneIp?: string; env?: NodeJS.ProcessEnv } = {},
  ): Promise<WaypointProcess> {
    return this.spawnRun({ args, ...opts });
  }

  /**
   * Like spawnWaypoint, with the --config paths chosen (instead of this mesh's config directory) and
   * the certificate files returned, so a test can rotate them. Resolves once the waypoint is listening.
   */
  async spawnRun(
    opts: {
      config?: readonly string[];
      args?: readonly string[];
      identity?: string;
      hboneIp?: string;
      env?: NodeJS.ProcessEnv;
    } = {},
  ): Promise<WaypointProcess & { files: { cert: string; key: string; ca: string } }> {
    const files = await this.certFiles(opts.identity ?? id('shop', 'waypoint'));
    const ip = opts.hboneIp ?? '127.0.0.2';
    const config = (opts.config ?? [this.configDir]).flatMap((c) => ['--config', c]);
    const proc = spawnCli(
      [
        'run',
        ...config,
        '--gateway',
        'shop/waypoint',
        '--cert',
        files.cert,
        '--key',
        files.key,
        '--ca',
        files.ca,
        '--hbone',
        `${ip}:0`,
        '--admin',
        `${ip}:0`,
        '--ready',
        `${ip}:0`,
        '--metrics',
        `${ip}:0`,
        ...(opts.args ?? []),
      ],
      { ...(opts.env ? { env: opts.env } : {}), register: (fn) => this.onClose(fn) },
    );
    // With --concurrency N > 1 the primary's line gives the replica's addresses once every worker
    // listens (each worker's own line says "worker listening").
    const workers = concurrencyOf(opts.args ?? [], { ...process.env, ...opts.env });
    // N + 1 processes load the sources on a machine of 2 cores: give them time in proportion.
    const [line] = await proc.waitForStderr(/\{[^\n]*"msg":"waypoint listening"[^\n]*\}/, 15_000 * workers);
    const parsed = JSON.parse(line) as { hbone: string; admin: string; ready: string; metrics: string };
    return {
      child: proc.child,
      hbone: parseHostPort(parsed.hbone),
      admin: parseHostPort(parsed.admin),
      ready: parseHostPort(parsed.ready),
      metrics: parseHostPort(parsed.metrics),
      stdout: proc.stdout,
      stderr: proc.stderr,
      exited: proc.exited,
      waitForStderr: async (pattern, timeoutMs) => (await proc.waitForStderr(pattern, timeoutMs))[0],
      workers,
      waitForEachWorker: (pattern, timeoutMs) =>
        eventually(
          () => linesOfEachWorker(proc.stderr(), pattern, workers),
          String(pattern),
          timeoutMs ?? 15_000,
        ),
      files,
    };
  }

  /** A ztunnel-like client: HBONE to the waypoint as `identity`. */
  async hboneClient(
    identity: string,
    ca?: DevCa,
    opts: { maxStreamsPerSession?: number } = {},
  ): Promise<HboneClient> {
    const client = new HboneClient(await this.credentials(identity, ca), opts);
    this.onClose(() => client.close());
    return client;
  }

  /** Opens one tunnel to `destination` through the waypoint at `waypoint`. */
  static tunnel(
    client: HboneClient,
    waypoint: HostPort,
    destination: HostPort,
    waypointIdentity = id('shop', 'waypoint'),
  ): Promise<ClientHttp2Stream> {
    return client.open(
      { ip: waypoint.ip, hbonePort: waypoint.port, identity: waypointIdentity },
      formatAuthority(destination.ip, destination.port),
      { forwarded: 'for="127.0.0.50:40000"' },
    );
  }

  /**
   * Sends `ping` through a tunnel to destination and resolves with what came back before the tunnel
   * ended: `ping` through an echo server, '' when the waypoint closed the tunnel (a TCP denial).
   */
  static async ping(client: HboneClient, waypoint: HostPort, destination: HostPort): Promise<string> {
    const stream = await TestMesh.tunnel(client, waypoint, destination);
    return new Promise((resolve) => {
      let got = '';
      stream.on('data', (d: Buffer) => {
        got += d.toString();
        if (got === 'ping') stream.end();
      });
      stream.on('error', () => resolve(got));
      stream.on('close', () => resolve(got));
      stream.write('ping');
    });
  }

  /** An undici pool whose connections are tunnels through the waypoint to destination (a VIP:port). */
  httpPool(client: HboneClient, waypoint: HostPort, destination: HostPort, opts: Pool.Options = {}): Pool {
    const pool = new Pool(`http://${formatAuthority(destination.ip, destination.port)}`, {
      ...opts,
      connect: (_o, cb) => {
        TestMesh.tunnel(client, waypoint, destination).then(
          (s) => cb(null, s as unknown as Duplex as never),
          (e: Error) => cb(e, null),
        );
      },
    });
    this.onClose(() => pool.destroy());
    return pool;
  }

  /** Same, HTTP/2 prior knowledge (for gRPC-like tests with undici). */
  h2Client(client: HboneClient, waypoint: HostPort, destination: HostPort): Client {
    const c = new Client(`http://${formatAuthority(destination.ip, destination.port)}`, {
      allowH2: true,
      connect: (_o, cb) => {
        TestMesh.tunnel(client, waypoint, destination).then(
          (s) => {
            (s as unknown as { alpnProtocol: string }).alpnProtocol = 'h2';
            cb(null, s as unknown as Duplex as never);
          },
          (e: Error) => cb(e, null),
        );
      },
    });
    this.onClose(() => c.destroy());
    return c;
  }

  async close(): Promise<void> {
    for (const c of this.#closers.reverse()) {
      try {
        await c();
      } catch {}
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

export function listeningPort(server: Server): number {
  return (server.address() as AddressInfo).port;
}

/** Fetches a URL on the admin or metrics port. */
export async function getText(hp: HostPort, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: hp.ip, port: hp.port, path }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

/** The first line matching `pattern` of each of `workers` processes ({"worker":N,...}), or undefined. */
function linesOfEachWorker(stderr: string, pattern: RegExp, workers: number): string[] | undefined {
  const first = new Map<string, string>();
  for (const line of stderr.split('\n')) {
    if (!pattern.test(line)) continue;
    const worker = workers > 1 ? /^\{"worker":(\d+),/.exec(line)?.[1] : '0';
    if (worker !== undefined && !first.has(worker)) first.set(worker, line);
  }
  return first.size >= workers ? [...first.values()] : undefined;
}

/** The worker count a `run` with these arguments and environment starts (1 unless told). */
export function concurrencyOf(args: readonly string[], env: NodeJS.ProcessEnv): number {
  const i = args.lastIndexOf('--concurrency');
  return Number(i >= 0 ? args[i + 1] : (env.WAYPOINT_CONCURRENCY ?? 1)) || 1;
}

/** A `node-waypoint` child process of any subcommand (see TestMesh.spawnCli). */
export interface CliProcess {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  waitForStdout(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  waitForStderr(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
}

/**
 * Runs `node-waypoint ARGS...` with the pinned Node, capturing stdout and stderr. The environment is
 * this process's without any WAYPOINT_* variable, plus opts.env. When `register` is given (a mesh's
 * onClose), the process is killed on close if it is still running.
 */
export function spawnCli(
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; register?: (fn: () => Promise<unknown>) => void } = {},
): CliProcess {
  const env: NodeJS.ProcessEnv = {};
  // WAYPOINT_CONCURRENCY stays, so that `WAYPOINT_CONCURRENCY=2 npx vitest run` runs every suite's
  // waypoint processes with two workers; unset, one (not the machine's CPU count, run's default).
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('WAYPOINT_')) env[k] = v;
  env.WAYPOINT_CONCURRENCY = process.env.WAYPOINT_CONCURRENCY ?? '1';
  const child = spawn(NODE, [...WAYPOINT_NODE_FLAGS, CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...env, ...opts.env },
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  opts.register?.(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const waitFor =
    (read: () => string, what: string) =>
    async (pattern: RegExp, timeoutMs = 15_000): Promise<RegExpExecArray> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = pattern.exec(read());
        if (m) return m;
        if (child.exitCode !== null || child.signalCode !== null)
          throw new Error(`node-waypoint ${args[0]} exited ${child.exitCode ?? child.signalCode}:\n${err}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern} on ${what}:\n${read()}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForStdout: waitFor(() => out, 'stdout'),
    waitForStderr: waitFor(() => err, 'stderr'),
  };
}

/** `waypoint_config_reloads_total{result="applied"} 3` → 3 (summed over matching series; 0 if none). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Polls `check` every 25 ms until it returns a value other than undefined/false, or throws on timeout. */
export async function eventually<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = 5_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`,
      );
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A curl-like plain HTTP/1.1 request on a fresh connection (no keep-alive pool). */
export function curl(
  hp: HostPort,
  path: string,
  opts: { method?: string; body?: string; headers?: http.OutgoingHttpHeaders; timeoutMs?: number } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: hp.ip,
        port: hp.port,
        path,
        method: opts.method ?? 'GET',
        agent: false,
        headers: { host: formatAuthority(hp.ip, hp.port), ...opts.headers },
        timeout: opts.timeoutMs ?? 10_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`curl ${path}: timed out`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** `127.0.0.1:15008` or `[::1]:15008` → HostPort. */
export function parseHostPort(s: string): HostPort {
  const i = s.lastIndexOf(':');
  return { ip: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) };
}
