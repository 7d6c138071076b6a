// The bench's loopback mesh: certificates from the dev CA, the waypoint's Kubernetes YAML, and the
// processes (backend, inbound and outbound ztunnel stand-ins, the waypoint through its CLI, the load
// generator), each pinned to a core with taskset when the machine has two or more.
//
//   client ─► 127.0.90.2:8080 backend                                                  (direct)
//   client ─► 127.0.90.1:15001 outbound ══HBONE══► 127.0.90.2:15008 inbound ─► backend  (tunnel floor)
//   client ─► 127.0.90.1:15002 outbound ══HBONE══► 127.0.90.3:15008 waypoint
//                                        ══HBONE══► 127.0.90.2:15008 inbound ─► backend  (waypoint)
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { WAYPOINT_NODE_FLAGS } from '../src/cli/node-flags.ts';
import { createDevCa, devCertFileNames } from '../src/identity/dev-ca.ts';

export const ROOT = new URL('..', import.meta.url).pathname;
export const CLI = join(ROOT, 'bin/node-waypoint.js');
export const BENCH = join(ROOT, 'bench');

export const TD = 'cluster.local';
export const NS = 'bench';
export const spiffe = (sa: string): string => `spiffe://${TD}/ns/${NS}/sa/${sa}`;

export interface Addr {
  readonly ip: string;
  readonly port: number;
}

export const ADDR = {
  backend: { ip: '127.0.90.2', port: 8080 },
  inbound: { ip: '127.0.90.2', port: 15008 },
  waypointHbone: { ip: '127.0.90.3', port: 15008 },
  waypointAdmin: { ip: '127.0.90.3', port: 15000 },
  waypointReady: { ip: '127.0.90.3', port: 15021 },
  waypointMetrics: { ip: '127.0.90.3', port: 15020 },
  vip: { ip: '127.0.90.10', port: 8080 },
  outboundFloor: { ip: '127.0.90.1', port: 15001 },
  outboundWaypoint: { ip: '127.0.90.1', port: 15002 },
  // HAProxy's path and the baseline waypoint (--baseline): 127.26.0.0/16.
  outboundHaproxy: { ip: '127.26.0.1', port: 15003 },
  outboundBaseline: { ip: '127.26.0.1', port: 15004 },
  backendTls: { ip: '127.26.0.2', port: 8443 },
  haproxy: { ip: '127.26.0.3', port: 15443 },
  baselineHbone: { ip: '127.26.0.4', port: 15008 },
  baselineAdmin: { ip: '127.26.0.4', port: 15000 },
  baselineReady: { ip: '127.26.0.4', port: 15021 },
  baselineMetrics: { ip: '127.26.0.4', port: 15020 },
} as const satisfies Record<string, Addr>;

export type PathName = 'direct' | 'floor' | 'waypoint' | 'baseline' | 'haproxy';
/** The L7 hop's process on each path that has one (pinned to the waypoint's core). */
export const HOP: Partial<Record<PathName, string>> = {
  waypoint: 'waypoint',
  baseline: 'baseline',
  haproxy: 'haproxy',
};

/** Where the load generator connects for each path, and the Host header it sends. */
export const ENTRY: Record<PathName, { addr: Addr; host: string }> = {
  direct: { addr: ADDR.backend, host: `${ADDR.backend.ip}:${ADDR.backend.port}` },
  floor: { addr: ADDR.outboundFloor, host: `${ADDR.backend.ip}:${ADDR.backend.port}` },
  waypoint: { addr: ADDR.outboundWaypoint, host: `backend.${NS}.svc.${TD}:${ADDR.vip.port}` },
  baseline: { addr: ADDR.outboundBaseline, host: `backend.${NS}.svc.${TD}:${ADDR.vip.port}` },
  haproxy: { addr: ADDR.outboundHaproxy, host: `backend.${NS}.svc.${TD}:${ADDR.vip.port}` },
};

export function meshYaml(): string {
  return `apiVersion: v1
kind: Namespace
metadata:
  name: ${NS}
  labels:
    istio.io/use-waypoint: waypoint
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: waypoint
  namespace: ${NS}
  labels:
    istio.io/waypoint-for: service
spec:
  gatewayClassName: istio-waypoint
  listeners:
    - name: mesh
      port: 15008
      protocol: HBONE
---
apiVersion: v1
kind: Service
metadata:
  name: backend
  namespace: ${NS}
spec:
  clusterIP: ${ADDR.vip.ip}
  selector:
    app: backend
  ports:
    - name: http
      port: ${ADDR.vip.port}
      targetPort: ${ADDR.backend.port}
---
apiVersion: v1
kind: Pod
metadata:
  name: backend-0
  namespace: ${NS}
  labels:
    app: backend
spec:
  serviceAccountName: backend
  containers:
    - name: app
      image: app
status:
  phase: Running
  podIP: ${ADDR.backend.ip}
  conditions:
    - type: Ready
      status: "True"
`;
}

export interface Pinning {
  readonly enabled: boolean;
  readonly cores: number;
  /** Why pinning is on or off, for the report. */
  readonly note: string;
  readonly waypointCore: string | undefined;
  readonly restCore: string | undefined;
}

export function pinning(wanted: boolean): Pinning {
  let cores = cpus().length;
  try {
    cores = Number(execFileSync('nproc', { encoding: 'utf8', timeout: 5_000 }).trim()) || cores;
  } catch {}
  const taskset = ['/usr/bin/taskset', '/bin/taskset', '/usr/sbin/taskset'].some((p) => existsSync(p));
  if (!wanted)
    return {
      enabled: false,
      cores,
      note: 'pinning off (--no-pin)',
      waypointCore: undefined,
      restCore: undefined,
    };
  if (!taskset)
    return {
      enabled: false,
      cores,
      note: 'pinning off: no taskset',
      waypointCore: undefined,
      restCore: undefined,
    };
  if (cores < 2)
    return {
      enabled: false,
      cores,
      note: `pinning off: nproc is ${cores}`,
      waypointCore: undefined,
      restCore: undefined,
    };
  return {
    enabled: true,
    cores,
    note: 'waypoint on core 1; load generator, autocannon, backend, both stand-ins and this orchestrator on core 0',
    waypointCore: '1',
    restCore: '0',
  };
}

/** Pins this process (all its threads) to a core. */
export function pinSelf(p: Pinning): void {
  if (!p.enabled || !p.restCore) return;
  execFileSync('taskset', ['-a', '-p', '-c', p.restCore, String(process.pid)], {
    stdio: 'ignore',
    timeout: 5_000,
  });
}

/** Every child this bench started and that has not exited yet. */
export const liveChildren = new Set<Child>();

/** SIGKILLs every live child (each by its own pid): the bench's last resort on a signal or a hang. */
export function killAllChildren(): void {
  for (const c of liveChildren) {
    try {
      c.proc.kill('SIGKILL');
    } catch {}
  }
}

export interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Lines printed on stdout (JSON lines from bench children). */
  readonly lines: string[];
  stderrTail(): string;
  readonly exited: Promise<number | null>;
  onLine(fn: (line: string) => void): void;
}

/** Spawns `node ARGS` (under taskset -c CORE when pinning), logging stderr (and stdout) to logFile. */
export function spawnNode(
  name: string,
  args: readonly string[],
  opts: { core: string | undefined; logFile: string; env?: Record<string, string> },
): Child {
  return spawnCmd(name, process.execPath, args, opts);
}

/** Spawns any program the same way (taskset execs it, so the pid is the program's own). */
export function spawnCmd(
  name: string,
  program: string,
  args: readonly string[],
  opts: { core: string | undefined; logFile: string; env?: Record<string, string> },
): Child {
  const cmd = opts.core ? 'taskset' : program;
  const argv = opts.core ? ['-c', opts.core, program, ...args] : [...args];
  // stdin stays a pipe: bench children exit when it closes, so they never outlive the bench.
  const proc = spawn(cmd, argv, {
    stdio: ['pipe', 'pipe', 'pipe'],
    cwd: ROOT,
    ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}),
  });
  if (proc.pid === undefined) throw new Error(`could not start ${name}`);
  const log: WriteStream = createWriteStream(opts.logFile, { flags: 'a' });
  log.on('error', () => {});
  let tail = '';
  const lines: string[] = [];
  const listeners: Array<(line: string) => void> = [];
  let partial = '';
  proc.stdout!.setEncoding('utf8');
  proc.stdout!.on('data', (d: string) => {
    log.write(d);
    partial += d;
    let nl = partial.indexOf('\n');
    while (nl >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      if (lines.length < 10_000) lines.push(line);
      for (const l of listeners) l(line);
      nl = partial.indexOf('\n');
    }
  });
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (d: string) => {
    log.write(d);
    tail = (tail + d).slice(-8_000);
  });
  proc.stdin!.on('error', () => {});
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))),
  );
  const child: Child = {
    name,
    proc,
    pid: proc.pid,
    lines,
    stderrTail: () => tail,
    exited,
    onLine: (fn) => listeners.push(fn),
  };
  liveChildren.add(child);
  proc.once('exit', () => {
    liveChildren.delete(child);
    log.end();
  });
  return child;
}

/** Waits for a child's {"ready": true} line. */
export function waitReady(child: Child, timeoutMs = 20_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${child.name} not ready within ${timeoutMs} ms: ${child.stderrTail()}`)),
      timeoutMs,
    );
    const check = (line: string): void => {
      if (!line.startsWith('{"ready"')) return;
      clearTimeout(timer);
      resolve(JSON.parse(line) as Record<string, unknown>);
    };
    for (const l of child.lines) check(l);
    child.onLine(check);
    void child.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${child.name} exited (${code}) before it was ready: ${child.stderrTail()}`));
    });
  });
}

/** SIGTERM, then SIGKILL after graceMs; only ever the given child's own pid. */
export async function stopChild(child: Child, graceMs = 5_000): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  child.proc.stdin?.end();
  child.proc.kill('SIGTERM');
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), graceMs);
  await child.exited;
  clearTimeout(timer);
}

export interface Certs {
  readonly dir: string;
  readonly ca: string;
  readonly client: { cert: string; key: string };
  readonly backend: { cert: string; key: string };
  readonly waypoint: { cert: string; key: string };
  /** The waypoint's certificate chain and key in one PEM file, as HAProxy's `crt` wants them. */
  readonly haproxyPem: string;
  readonly configDir: string;
}

/**
 * `count` AuthorizationPolicies on the backend Service, arranged as the worst case for evaluation:
 * half DENY policies that never match the bench client, then ALLOW policies of which only the last
 * admits it, so every request walks every rule.
 */
export function policiesYaml(count: number): string {
  const docs: string[] = [];
  const denies = Math.floor(count / 2);
  for (let i = 0; i < count; i++) {
    const deny = i < denies;
    const last = i === count - 1;
    const principal = last
      ? `${TD}/ns/${NS}/sa/client`
      : `${TD}/ns/${NS}/sa/${deny ? 'blocked' : 'other'}-${i}`;
    docs.push(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: bench-${deny ? 'deny' : 'allow'}-${i}
  namespace: ${NS}
spec:
  targetRefs:
    - { kind: Service, group: "", name: backend }
  action: ${deny ? 'DENY' : 'ALLOW'}
  rules:
    - from:
        - source:
            principals: ["${principal}"]
      to:
        - operation:
            methods: ["${deny ? 'DELETE' : 'POST'}", "GET"]
            paths: ["${deny ? `/admin/${i}/*` : '/*'}"]
`);
  }
  return docs.join('---\n');
}

/**
 * A temporary directory with the dev CA's certificates and the mesh YAML (plus `policies`
 * AuthorizationPolicies, and `extra` config files: name → YAML, e.g. routes or the resilience chain).
 */
export async function prepare(policies = 0, extra: Readonly<Record<string, string>> = {}): Promise<Certs> {
  const dir = await mkdtemp(join(tmpdir(), 'waypoint-bench-'));
  const ca = await createDevCa({ trustDomain: TD });
  const caFile = join(dir, 'root-cert.pem');
  await writeFile(caFile, ca.rootPem);
  const issue = async (sa: string): Promise<{ cert: string; key: string }> => {
    const id = spiffe(sa);
    const issued = await ca.issue(id);
    const names = devCertFileNames(id);
    const cert = join(dir, names.cert);
    const key = join(dir, names.key);
    await writeFile(cert, issued.certChainPem);
    await writeFile(key, issued.keyPem, { mode: 0o600 });
    return { cert, key };
  };
  const configDir = join(dir, 'config');
  await mkdir(configDir);
  await writeFile(join(configDir, 'mesh.yaml'), meshYaml());
  if (policies > 0) await writeFile(join(configDir, 'policies.yaml'), policiesYaml(policies));
  for (const [name, yaml] of Object.entries(extra)) await writeFile(join(configDir, name), yaml);
  const waypoint = await issue('waypoint');
  const haproxyPem = join(dir, 'haproxy.pem');
  await writeFile(
    haproxyPem,
    (await readFile(waypoint.cert, 'utf8')) + (await readFile(waypoint.key, 'utf8')),
    {
      mode: 0o600,
    },
  );
  return {
    dir,
    ca: caFile,
    client: await issue('client'),
    backend: await issue('backend'),
    waypoint,
    haproxyPem,
    configDir,
  };
}

export function cleanup(certs: Certs): Promise<void> {
  return rm(certs.dir, { recursive: true, force: true });
}

/** One HTTP/1.1 request on a fresh connection; resolves with the status (0 on a network error). */
export function probe(
  addr: Addr,
  host: string,
  path = '/echo',
  method = 'POST',
  timeoutMs = 2_000,
): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(
      { host: addr.ip, port: addr.port, path, method, agent: false, headers: { host }, timeout: timeoutMs },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(0));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(0));
    req.end(method === 'POST' ? 'ping' : undefined);
  });
}

/**
 * One POST /echo on a fresh TCP connection, read raw: "200", another status, or what came back
 * instead of a status line (quoted), or "no response".
 */
export function rawProbe(addr: Addr, host: string, timeoutMs = 2_000): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: addr.ip, port: addr.port });
    let buf = Buffer.alloc(0);
    const done = (r: string): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(
      () => done(buf.length ? `incomplete: ${JSON.stringify(buf.toString('latin1', 0, 40))}` : 'no response'),
      timeoutMs,
    );
    socket.on('error', (err) => done(`error: ${err.message}`));
    socket.on('close', () =>
      done(
        buf.length ? `closed after ${JSON.stringify(buf.toString('latin1', 0, 40))}` : 'closed, no response',
      ),
    );
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const eol = buf.indexOf('\r\n');
      if (eol < 0 && buf.length < 64) return;
      const line = buf.toString('latin1', 0, eol < 0 ? 40 : Math.min(eol, 40));
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(line);
      done(m ? m[1]! : `not HTTP: first bytes ${JSON.stringify(buf.toString('latin1', 0, 40))}`);
    });
    socket.write(`POST /echo HTTP/1.1\r\nhost: ${host}\r\ncontent-length: 4\r\n\r\nping`);
  });
}

/** Retries rawProbe until it answers 200 or timeoutMs passes; returns the last answer. */
export async function rawProbeUntilOk(addr: Addr, host: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let got = '';
  while (Date.now() < deadline) {
    got = await rawProbe(addr, host);
    if (got === '200') return got;
    await new Promise((r) => setTimeout(r, 200));
  }
  return got;
}

/** GET a waypoint's Prometheus text (its metrics port); '' when it does not answer. */
export function scrapeMetrics(addr: Addr = ADDR.waypointMetrics, timeoutMs = 2_000): Promise<string> {
  return new Promise((resolve) => {
    const req = http.get(
      {
        host: addr.ip,
        port: addr.port,
        path: '/stats/prometheus',
        agent: false,
        timeout: timeoutMs,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          if (body.length < 4_000_000) body += d;
        });
        res.on('end', () => resolve(res.statusCode === 200 ? body : ''));
        res.on('error', () => resolve(''));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(''));
  });
}

/** The sum of every sample of a metric (all label sets), or undefined when it is absent. */
export function metricValue(text: string, name: string, labels = ''): number | undefined {
  let total: number | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (!(rest.startsWith(' ') || rest.startsWith('{'))) continue;
    if (labels && !rest.includes(labels)) continue;
    const v = Number(rest.slice(rest.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) total = (total ?? 0) + v;
  }
  return total;
}

/** Retries probe until it answers 200 or timeoutMs passes; returns the last status. */
export async function probeUntilOk(addr: Addr, host: string, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let status = 0;
  while (Date.now() < deadline) {
    status = await probe(addr, host);
    if (status === 200) return status;
    await new Promise((r) => setTimeout(r, 100));
  }
  return status;
}

/** The processes of one mesh: backend, stand-ins, waypoint, and on request HAProxy and a baseline waypoint. */
export interface Mesh {
  readonly backend: Child;
  readonly inbound: Child;
  readonly outbound: Child;
  readonly waypoint: Child | undefined;
  readonly baseline: Child | undefined;
  readonly haproxy: Child | undefined;
  /** What a request through each L7 path got at start-up ("200" when healthy). */
  readonly probes: Partial<Record<PathName, string>>;
  stop(): Promise<void>;
}

/** A waypoint of some tree (this one, or a baseline commit's worktree), as `node-waypoint run`. */
export interface WaypointTree {
  readonly root: string;
  /** Its production V8 flags (its own src/cli/node-flags.ts). */
  readonly nodeFlags: readonly string[];
}

/** Where bin/node-waypoint.js's module.enableCompileCache() puts the cache unless NODE_COMPILE_CACHE says. */
export const COMPILE_CACHE = process.env.NODE_COMPILE_CACHE || join(tmpdir(), 'node-compile-cache');

export const HAPROXY_BIN = ['/usr/sbin/haproxy', '/usr/bin/haproxy'].find((p) => existsSync(p));

/**
 * HAProxy as the closest L7 hop it can be: mutual TLS HTTP/2 in (the waypoint's certificate, the
 * mesh CA, client certificate required), HTTP/1.1 over mutual TLS out to the backend's TLS port,
 * one thread, keep-alive and connection reuse both ways, one access-log line per request on stdout.
 */
export function haproxyConfig(certs: Certs): string {
  const h = ADDR.haproxy;
  const b = ADDR.backendTls;
  return `global
  nbthread 1
  maxconn 4096
  log stdout format raw local0 info

defaults
  mode http
  log global
  option httplog
  option http-keep-alive
  timeout connect 5s
  timeout client 130s
  timeout server 130s
  timeout http-keep-alive 130s

frontend mesh
  bind ${h.ip}:${h.port} ssl crt ${certs.haproxyPem} ca-file ${certs.ca} verify required alpn h2
  default_backend pod

backend pod
  http-reuse always
  server backend-0 ${b.ip}:${b.port} ssl crt ${certs.haproxyPem} ca-file ${certs.ca} verify required alpn http/1.1
`;
}

function waypointRunArgs(certs: Certs, which: 'waypoint' | 'baseline', extra: readonly string[]): string[] {
  const a =
    which === 'waypoint'
      ? [ADDR.waypointHbone, ADDR.waypointAdmin, ADDR.waypointReady, ADDR.waypointMetrics]
      : [ADDR.baselineHbone, ADDR.baselineAdmin, ADDR.baselineReady, ADDR.baselineMetrics];
  const hp = (x: Addr): string => `${x.ip}:${x.port}`;
  return [
    'run',
    '--config',
    certs.configDir,
    '--gateway',
    `${NS}/waypoint`,
    '--cert',
    certs.waypoint.cert,
    '--key',
    certs.waypoint.key,
    '--ca',
    certs.ca,
    '--hbone',
    hp(a[0]!),
    '--admin',
    hp(a[1]!),
    '--ready',
    hp(a[2]!),
    '--metrics',
    hp(a[3]!),
    ...extra,
  ];
}

/** Ready = the admin port says so and a request makes it through the whole path. */
async function waypointReady(w: Child, admin: Addr, path: PathName): Promise<string> {
  const deadline = Date.now() + 30_000;
  while ((await probe(admin, 'admin', '/healthz/ready', 'GET')) !== 200) {
    if (w.proc.exitCode !== null) throw new Error(`${w.name} exited (${w.proc.exitCode}): ${w.stderrTail()}`);
    if (Date.now() > deadline) throw new Error(`${w.name} not ready within 30 s: ${w.stderrTail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  // A waypoint that answers, but wrongly, still gets measured: the failures are the finding.
  return rawProbeUntilOk(ENTRY[path].addr, ENTRY[path].host, 10_000);
}

export async function startMesh(opts: {
  certs: Certs;
  pin: Pinning;
  logDir: string;
  label: string;
  responseBytes: number;
  framing: 'length' | 'chunked';
  withWaypoint: boolean;
  waypointArgs: readonly string[];
  /** Node options for the waypoint process, after the production ones (e.g. --trace-gc, --cpu-prof). */
  waypointNodeArgs?: readonly string[];
  /** A second waypoint from another commit's worktree (path "baseline"). */
  baseline?: WaypointTree;
  withHaproxy?: boolean;
  /** bench/loop-lag.ts's resolution in every waypoint, ms; 0: no probe. */
  loopLagMs?: number;
  /** Extra environment for the waypoint processes (bench/profile.ts: its agent's directory). */
  waypointEnv?: Readonly<Record<string, string>>;
}): Promise<Mesh> {
  const { certs, pin, logDir, label } = opts;
  const started: Child[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(started.map((c) => stopChild(c)));
  };
  try {
    const start = (
      name: string,
      args: readonly string[],
      core: string | undefined,
      env?: Record<string, string>,
    ): Child => {
      const c = spawnNode(name, args, {
        core,
        logFile: join(logDir, `${label}.${name}.log`),
        ...(env ? { env } : {}),
      });
      started.push(c);
      return c;
    };
    const backend = start(
      'backend',
      [
        join(BENCH, 'backend.ts'),
        JSON.stringify({
          ...ADDR.backend,
          responseBytes: opts.responseBytes,
          framing: opts.framing,
          ...(opts.withHaproxy ? { tls: { ...ADDR.backendTls, ...certs.backend, ca: certs.ca } } : {}),
        }),
      ],
      pin.restCore,
    );
    const inbound = start(
      'inbound',
      [
        join(BENCH, 'standin.ts'),
        JSON.stringify({ role: 'inbound', listen: ADDR.inbound, ca: certs.ca, ...certs.backend }),
      ],
      pin.restCore,
    );
    const outbound = start('outbound', [join(BENCH, 'standin.ts'), outboundConfig(certs)], pin.restCore);
    // Every waypoint gets the bench's event-loop probe (bench/loop-lag.ts), after its own flags.
    const lagMs = opts.loopLagMs ?? 2;
    const probeArgs = lagMs > 0 ? ['--import', join(BENCH, 'loop-lag.ts')] : [];
    const runWaypoint = (which: 'waypoint' | 'baseline', tree: WaypointTree): Child =>
      start(
        which,
        [
          // The production flags, then the run's own (a later V8 flag wins over an earlier one).
          ...tree.nodeFlags,
          ...(opts.waypointNodeArgs ?? []),
          ...probeArgs,
          join(tree.root, 'bin/node-waypoint.js'),
          ...waypointRunArgs(certs, which, opts.waypointArgs),
        ],
        pin.waypointCore,
        {
          BENCH_LOOP_LAG_MS: String(lagMs),
          // This tree's bin enables the compile cache in its default place once the preloads have run;
          // naming the place here lets the bench's .ts preloads use it too, as production has none.
          ...(which === 'waypoint' ? { NODE_COMPILE_CACHE: COMPILE_CACHE } : {}),
          ...opts.waypointEnv,
        },
      );
    const waypoint = opts.withWaypoint
      ? runWaypoint('waypoint', { root: ROOT, nodeFlags: WAYPOINT_NODE_FLAGS })
      : undefined;
    const baseline = opts.baseline ? runWaypoint('baseline', opts.baseline) : undefined;
    let haproxy: Child | undefined;
    if (opts.withHaproxy) {
      if (!HAPROXY_BIN) throw new Error('the haproxy path needs HAProxy: apt-get install -y haproxy');
      const cfgFile = join(certs.dir, 'haproxy.cfg');
      await writeFile(cfgFile, haproxyConfig(certs));
      await writeFile(join(logDir, 'haproxy.cfg'), haproxyConfig(certs));
      haproxy = spawnCmd('haproxy', HAPROXY_BIN, ['-db', '-f', cfgFile], {
        core: pin.waypointCore,
        logFile: join(logDir, `${label}.haproxy.log`),
      });
      started.push(haproxy);
    }
    await Promise.all([waitReady(backend), waitReady(inbound), waitReady(outbound)]);
    const probes: Partial<Record<PathName, string>> = {};
    if (waypoint) probes.waypoint = await waypointReady(waypoint, ADDR.waypointAdmin, 'waypoint');
    if (baseline) probes.baseline = await waypointReady(baseline, ADDR.baselineAdmin, 'baseline');
    if (haproxy) {
      probes.haproxy = await rawProbeUntilOk(ENTRY.haproxy.addr, ENTRY.haproxy.host, 10_000);
      if (haproxy.proc.exitCode !== null)
        throw new Error(`haproxy exited (${haproxy.proc.exitCode}): ${haproxy.stderrTail()}`);
    }
    const floor = await probeUntilOk(ENTRY.floor.addr, ENTRY.floor.host, 10_000);
    if (floor !== 200) throw new Error(`no 200 through the tunnel floor (last status ${floor})`);
    return { backend, inbound, outbound, waypoint, baseline, haproxy, probes, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The outbound stand-in: one HBONE listener per mesh path, and the HTTP/2 bridge to HAProxy. */
function outboundConfig(certs: Certs): string {
  const tunnel = (name: string, listen: Addr, waypoint: Addr, sa: string, destination: Addr) => ({
    name,
    listen,
    waypoint,
    waypointIdentity: spiffe(sa),
    destination,
  });
  return JSON.stringify({
    role: 'outbound',
    ca: certs.ca,
    ...certs.client,
    listeners: [
      // No waypoint: HBONE straight to the pod's inbound stand-in, as ztunnel does.
      tunnel('floor', ADDR.outboundFloor, ADDR.inbound, 'backend', ADDR.backend),
      tunnel('waypoint', ADDR.outboundWaypoint, ADDR.waypointHbone, 'waypoint', ADDR.vip),
      tunnel('baseline', ADDR.outboundBaseline, ADDR.baselineHbone, 'waypoint', ADDR.vip),
    ],
    h2Bridges: [
      {
        name: 'haproxy',
        listen: ADDR.outboundHaproxy,
        upstream: ADDR.haproxy,
        upstreamIdentity: spiffe('waypoint'),
      },
    ],
  });
}
