// `node-waypoint demo` (what `npm start` runs): the waypoint on the embedded Bank of Anthos
// configuration (config/demo), with everything around it a cluster would provide, on loopback:
// a tiny backend on every pod IP, a ztunnel stand-in in front of each (HBONE on POD_IP:15008), and
// outbound stand-ins speaking for the sleep pod, one per Service, that curl can reach.
import http from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Endpoint, ObjectRef, ServicePortBinding } from '../../config/model.ts';
import { FileConfigSource } from '../../config/source.ts';
import { composeWaypoint } from '../compose.ts';
import { formatAuthority, type HostPort } from '../hbone/authority.ts';
import { type Credentials, memoryCredentials } from '../identity/credentials.ts';
import { createDevCa } from '../identity/dev-ca.ts';
import { parseSpiffeId } from '../identity/spiffe.ts';
import { type AccessLogMode, parseAccessLogMode } from '../observe/access-log.ts';
import { createLogger, type Logger } from '../observe/logger.ts';
import { InboundTunnel } from '../ztunnel/inbound.ts';
import { OutboundTunnel } from '../ztunnel/outbound.ts';
import { checked, parseListen } from './flags.ts';
import { untilSignal } from './run.ts';
import { configPathsFrom, gatewayFrom, logLevelFrom, SHARED_FLAGS } from './shared-flags.ts';
import { DEMO_USAGE } from './usage.ts';

export { DEMO_USAGE };

export const DEMO_CONFIG = join(dirname(fileURLToPath(import.meta.url)), '../../config/demo');

/** A backend that says who answered, for people and tests. */
function backend(service: string, endpoint: Endpoint): http.Server {
  return http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 4096) chunks.push(c);
    });
    req.on('end', () => {
      const body = JSON.stringify({
        service,
        pod: endpoint.pod?.name ?? endpoint.ip,
        method: req.method,
        path: req.url,
        bodyBytes: size,
      });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`${body}\n`);
    });
  });
}

type Closer = () => Promise<void> | void;
type CredentialsFor = (identity: string) => Promise<Credentials>;
type Route = { binding: ServicePortBinding; local: HostPort };

interface DemoSettings {
  readonly log: Logger;
  readonly accessLog: AccessLogMode;
  readonly configPaths: string[];
  readonly gateway: ObjectRef;
  readonly waypointIp: string;
  readonly clientIp: string;
  readonly clientIdentity: string;
  readonly trustDomain: string;
}

export async function runDemo(argv: string[]): Promise<number> {
  const settings = demoSettings(argv);
  if (!settings) {
    process.stdout.write(DEMO_USAGE);
    return 0;
  }
  const { log, gateway, trustDomain } = settings;
  const bindings = await demoBindings(settings);
  const ca = await createDevCa({ trustDomain });
  const credentialsFor: CredentialsFor = async (identity) => {
    const issued = await ca.issue(identity);
    return memoryCredentials({ cert: issued.certChainPem, key: issued.keyPem, ca: ca.rootPem });
  };
  const waypointIdentity = `spiffe://${trustDomain}/ns/${gateway.namespace}/sa/${gateway.name}`;
  const closers: Closer[] = [];
  await startPods(bindings, credentialsFor, log, closers);
  const waypoint = composeWaypoint({
    configPaths: settings.configPaths,
    gateway,
    hbone: { host: settings.waypointIp, port: 15008 },
    admin: { host: settings.waypointIp, port: 15000 },
    ready: { host: settings.waypointIp, port: 15021 },
    metrics: { host: settings.waypointIp, port: 15020 },
    credentials: await credentialsFor(waypointIdentity),
    endpointHbonePort: 15008,
    accessLog: settings.accessLog,
    log,
    drainDeadlineMs: 5_000,
  });
  await waypoint.start();
  const routes = await startClientTunnels(settings, bindings, waypointIdentity, credentialsFor, closers);
  process.stdout.write(`${instructions(settings, waypointIdentity, routes).join('\n')}\n`);
  return untilSignal(async () => {
    await waypoint.shutdown();
    for (const c of closers.reverse()) await c();
    return 0;
  }, log);
}

export const DEMO_OPTIONS = {
  config: SHARED_FLAGS.config,
  gateway: SHARED_FLAGS.gateway,
  'log-level': SHARED_FLAGS['log-level'],
  help: SHARED_FLAGS.help,
  'waypoint-ip': { type: 'string' },
  'client-ip': { type: 'string' },
  'client-identity': { type: 'string' },
  'access-log': { type: 'string' },
} as const;

/** The demo's flags (no environment variables: `npm start` does what it says); undefined for --help. */
function demoSettings(argv: string[]): DemoSettings | undefined {
  const { values } = parseArgs({ args: argv, strict: true, options: DEMO_OPTIONS });
  if (values.help) return undefined;
  const gateway = gatewayFrom(values.gateway, {}, 'bank-of-anthos/waypoint')!;
  const clientIdentity =
    values['client-identity'] ?? `spiffe://cluster.local/ns/${gateway.namespace}/sa/sleep`;
  const configPaths = configPathsFrom(values.config, {});
  return {
    log: createLogger(logLevelFrom(values['log-level'], {}, 'warn')),
    accessLog: checked('--access-log', () => parseAccessLogMode(values['access-log'] ?? 'all')),
    configPaths: configPaths.length > 0 ? configPaths : [DEMO_CONFIG],
    gateway,
    waypointIp: parseListen('--waypoint-ip', `${values['waypoint-ip'] ?? '127.10.0.2'}:0`).ip,
    clientIp: parseListen('--client-ip', `${values['client-ip'] ?? '127.10.0.1'}:0`).ip,
    clientIdentity,
    trustDomain: parseSpiffeId(clientIdentity)?.trustDomain ?? 'cluster.local',
  };
}

/** What the cluster would have: the Services and endpoints, from the same compiled config. */
async function demoBindings(s: DemoSettings): Promise<ServicePortBinding[]> {
  const probe = await new FileConfigSource(s.configPaths, {
    gateway: s.gateway,
    trustDomain: s.trustDomain,
    clusterDomain: 'cluster.local',
  }).load();
  const snapshot = probe.snapshot;
  if (!snapshot) throw new Error(`demo: no usable configuration in ${s.configPaths.join(', ')}`);
  for (const m of probe.report.rejected) process.stderr.write(`config rejected: ${m.message}\n`);
  return [...snapshot.services.values()];
}

/** Pods: a backend on POD_IP:PORT and a ztunnel stand-in on POD_IP:15008, once per endpoint. */
async function startPods(
  bindings: readonly ServicePortBinding[],
  credentialsFor: CredentialsFor,
  log: Logger,
  closers: Closer[],
): Promise<void> {
  const started = new Set<string>();
  const inbound = new Set<string>();
  for (const b of bindings) {
    for (const e of b.endpoints) {
      const key = formatAuthority(e.ip, e.port);
      if (!started.has(key)) {
        started.add(key);
        const server = backend(b.service.name, e);
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(e.port, e.ip, () => resolve());
        });
        closers.push(() => new Promise<void>((r) => server.close(() => r())));
      }
      if (!inbound.has(e.ip)) {
        inbound.add(e.ip);
        const tunnel = new InboundTunnel({
          listen: { ip: e.ip, port: 15008 },
          credentials: await credentialsFor(e.identity),
          log,
        });
        await tunnel.listen();
        closers.push(() => tunnel.close());
      }
    }
  }
}

/** The sleep pod's ztunnel: one local port per Service port, each tunnelling to that VIP:port. */
async function startClientTunnels(
  s: DemoSettings,
  bindings: readonly ServicePortBinding[],
  waypointIdentity: string,
  credentialsFor: CredentialsFor,
  closers: Closer[],
): Promise<Route[]> {
  const clientCreds = await credentialsFor(s.clientIdentity);
  const routes: Route[] = [];
  let port = 18000;
  for (const b of bindings) {
    const [vip, vport] = splitKey(b.key);
    const out = new OutboundTunnel({
      listen: { ip: s.clientIp, port: port++ },
      waypoint: { ip: s.waypointIp, port: 15008 },
      waypointIdentity,
      destination: { ip: vip, port: vport },
      credentials: clientCreds,
      log: s.log,
    });
    routes.push({ binding: b, local: await out.listen() });
    closers.push(() => out.close());
  }
  return routes;
}

/** What the demo prints for people: where everything is, and curl commands to try. */
function instructions(s: DemoSettings, waypointIdentity: string, routes: readonly Route[]): string[] {
  const { gateway, waypointIp } = s;
  return [
    '',
    `node-waypoint demo: waypoint ${gateway.namespace}/${gateway.name} (${waypointIdentity})`,
    `  HBONE     ${waypointIp}:15008    readiness http://${waypointIp}:15021/healthz/ready`,
    `  admin     http://${waypointIp}:15000/ (config_dump, clusters, stats, server_info, certs)    metrics http://${waypointIp}:15020/stats/prometheus`,
    '',
    `Services bound to the waypoint (ClusterIP:port -> endpoints), and where the sleep pod (${s.clientIdentity}) reaches them:`,
    ...routes.map(
      ({ binding, local }) =>
        `  ${binding.service.name.padEnd(20)} ${binding.key.padEnd(18)} -> ${binding.endpoints
          .map((e) => formatAuthority(e.ip, e.port))
          .join(', ')
          .padEnd(34)} curl http://${formatAuthority(local.ip, local.port)}/`,
    ),
    '',
    'Try:',
    ...showcaseHint(s, routes),
    ...canaryHint(routes),
    `  curl -s http://${waypointIp}:15020/stats/prometheus | grep istio_requests_total`,
    `  curl -s http://${waypointIp}:15000/config_dump       # what the waypoint serves, and why`,
    `  curl -s http://${waypointIp}:15000/clusters          # endpoints: health, ejections, requests`,
    '',
    'Access log below (Istio format). Ctrl-C to stop.',
    '',
  ];
}

/**
 * The hint shows load balancing, so it points at the Service with the most endpoints (frontend when
 * present: the demo's policies are on it).
 */
function showcaseHint(s: DemoSettings, routes: readonly Route[]): string[] {
  const showcase =
    routes.find((r) => r.binding.service.name === 'frontend') ??
    [...routes].sort((a, b) => b.binding.endpoints.length - a.binding.endpoints.length)[0];
  if (!showcase) return [];
  const url = `http://${formatAuthority(showcase.local.ip, showcase.local.port)}`;
  const { service, port } = showcase.binding;
  return [
    `  curl -s ${url}/             # ${service.name}: ${showcase.binding.endpoints.length} pods share the load`,
    `  curl -s -X POST --data hello ${url}/login`,
    `  curl -s -X DELETE ${url}/      # with config/demo's frontend-viewer policy: RBAC: access denied`,
    `  npx node-waypoint explain --config config/demo --gateway ${s.gateway.namespace}/${s.gateway.name} --from ${s.clientIdentity} --to ${service.name}.${service.namespace}:${port} --method DELETE --path /`,
  ];
}

/** The demo's traffic split (HTTPRoute balancereader-canary, 90/10), if the config still has it. */
function canaryHint(routes: readonly Route[]): string[] {
  const r = routes.find((x) => x.binding.service.name === 'balancereader');
  if (!r) return [];
  const url = `http://${formatAuthority(r.local.ip, r.local.port)}/`;
  return [
    `  for i in $(seq 100); do curl -s ${url}; done | grep -o '"pod":"[^"]*"' | sort | uniq -c   # balancereader: 90/10 canary (HTTPRoute)`,
  ];
}

function splitKey(key: string): [string, number] {
  const i = key.lastIndexOf(':');
  return [key.slice(0, i).replace(/^\[|\]$/g, ''), Number(key.slice(i + 1))];
}
