// `node-waypoint demo` (what `npm start` runs): the waypoint on the embedded Bank of Anthos
// configuration (config/demo), with everything around it a cluster would provide, on loopback:
// a tiny backend on every pod IP, a ztunnel stand-in in front of each (HBONE on POD_IP:15008), and
// outbound stand-ins speaking for the sleep pod, one per Service, that curl can reach.
import http from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Endpoint, ServicePortBinding } from '../../config/model.ts';
import { FileConfigSource } from '../../config/source.ts';
import { composeWaypoint } from '../compose.ts';
import { formatAuthority, type HostPort } from '../hbone/authority.ts';
import { memoryCredentials } from '../identity/credentials.ts';
import { createDevCa } from '../identity/dev-ca.ts';
import { parseSpiffeId } from '../identity/spiffe.ts';
import { parseAccessLogMode } from '../observe/access-log.ts';
import { createLogger, parseLogLevel } from '../observe/logger.ts';
import { InboundTunnel } from '../ztunnel/inbound.ts';
import { OutboundTunnel } from '../ztunnel/outbound.ts';
import { checked, parseListen, parseRef } from './flags.ts';
import { untilSignal } from './run.ts';
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

export async function runDemo(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      config: { type: 'string', multiple: true },
      gateway: { type: 'string' },
      'waypoint-ip': { type: 'string' },
      'client-ip': { type: 'string' },
      'client-identity': { type: 'string' },
      'access-log': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(DEMO_USAGE);
    return 0;
  }
  const log = createLogger(checked('--log-level', () => parseLogLevel(values['log-level'] ?? 'warn')));
  const accessLog = checked('--access-log', () => parseAccessLogMode(values['access-log'] ?? 'all'));
  const configPaths = values.config ?? [DEMO_CONFIG];
  const gateway = parseRef('--gateway', values.gateway ?? 'bank-of-anthos/waypoint');
  const waypointIp = parseListen('--waypoint-ip', `${values['waypoint-ip'] ?? '127.10.0.2'}:0`).ip;
  const clientIp = parseListen('--client-ip', `${values['client-ip'] ?? '127.10.0.1'}:0`).ip;
  const clientIdentity =
    values['client-identity'] ?? `spiffe://cluster.local/ns/${gateway.namespace}/sa/sleep`;
  const trustDomain = parseSpiffeId(clientIdentity)?.trustDomain ?? 'cluster.local';

  // What the cluster would have: learn the Services and endpoints from the same compiled config.
  const probe = await new FileConfigSource(configPaths, {
    gateway,
    trustDomain,
    clusterDomain: 'cluster.local',
  }).load();
  const snapshot = probe.snapshot;
  if (!snapshot) throw new Error(`demo: no usable configuration in ${configPaths.join(', ')}`);
  for (const m of probe.report.rejected) process.stderr.write(`config rejected: ${m.message}\n`);
  const bindings = [...snapshot.services.values()];

  const ca = await createDevCa({ trustDomain });
  const credentialsFor = async (identity: string) => {
    const issued = await ca.issue(identity);
    return memoryCredentials({ cert: issued.certChainPem, key: issued.keyPem, ca: ca.rootPem });
  };
  const waypointIdentity = `spiffe://${trustDomain}/ns/${gateway.namespace}/sa/${gateway.name}`;
  const closers: Array<() => Promise<void> | void> = [];

  // Pods: a backend on POD_IP:PORT and a ztunnel stand-in on POD_IP:15008, once per endpoint.
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

  const waypoint = composeWaypoint({
    configPaths,
    gateway,
    hbone: { host: waypointIp, port: 15008 },
    admin: { host: waypointIp, port: 15000 },
    ready: { host: waypointIp, port: 15021 },
    metrics: { host: waypointIp, port: 15020 },
    credentials: await credentialsFor(waypointIdentity),
    endpointHbonePort: 15008,
    accessLog,
    log,
    drainDeadlineMs: 5_000,
  });
  await waypoint.start();

  // The sleep pod's ztunnel: one local port per Service port, each tunnelling to that VIP:port.
  const clientCreds = await credentialsFor(clientIdentity);
  const routes: Array<{ binding: ServicePortBinding; local: HostPort }> = [];
  let port = 18000;
  for (const b of bindings) {
    const [vip, vport] = splitKey(b.key);
    const out = new OutboundTunnel({
      listen: { ip: clientIp, port: port++ },
      waypoint: { ip: waypointIp, port: 15008 },
      waypointIdentity,
      destination: { ip: vip, port: vport },
      credentials: clientCreds,
      log,
    });
    routes.push({ binding: b, local: await out.listen() });
    closers.push(() => out.close());
  }

  // The hint shows load balancing, so point it at the Service with the most endpoints.
  // (frontend when present: the demo's policies are on it.)
  const showcase =
    routes.find((r) => r.binding.service.name === 'frontend') ??
    [...routes].sort((a, b) => b.binding.endpoints.length - a.binding.endpoints.length)[0];
  const lines = [
    '',
    `node-waypoint demo: waypoint ${gateway.namespace}/${gateway.name} (${waypointIdentity})`,
    `  HBONE     ${waypointIp}:15008    readiness http://${waypointIp}:15021/healthz/ready`,
    `  admin     http://${waypointIp}:15000/ (config_dump, clusters, stats, server_info, certs)    metrics http://${waypointIp}:15020/stats/prometheus`,
    '',
    `Services bound to the waypoint (ClusterIP:port -> endpoints), and where the sleep pod (${clientIdentity}) reaches them:`,
    ...routes.map(
      ({ binding, local }) =>
        `  ${binding.service.name.padEnd(20)} ${binding.key.padEnd(18)} -> ${binding.endpoints
          .map((e) => formatAuthority(e.ip, e.port))
          .join(', ')
          .padEnd(34)} curl http://${formatAuthority(local.ip, local.port)}/`,
    ),
    '',
    'Try:',
    ...(showcase
      ? [
          `  curl -s http://${formatAuthority(showcase.local.ip, showcase.local.port)}/             # ${showcase.binding.service.name}: ${showcase.binding.endpoints.length} pods share the load`,
          `  curl -s -X POST --data hello http://${formatAuthority(showcase.local.ip, showcase.local.port)}/login`,
          `  curl -s -X DELETE http://${formatAuthority(showcase.local.ip, showcase.local.port)}/      # with config/demo's frontend-viewer policy: RBAC: access denied`,
          `  npx node-waypoint explain --config config/demo --gateway ${gateway.namespace}/${gateway.name} --from ${clientIdentity} --to ${showcase.binding.service.name}.${showcase.binding.service.namespace}:${showcase.binding.port} --method DELETE --path /`,
        ]
      : []),
    ...canaryHint(routes),
    `  curl -s http://${waypointIp}:15020/stats/prometheus | grep istio_requests_total`,
    `  curl -s http://${waypointIp}:15000/config_dump       # what the waypoint serves, and why`,
    `  curl -s http://${waypointIp}:15000/clusters          # endpoints: health, ejections, requests`,
    '',
    'Access log below (Istio format). Ctrl-C to stop.',
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  return untilSignal(async () => {
    await waypoint.shutdown();
    for (const c of closers.reverse()) await c();
    return 0;
  }, log);
}

/** The demo's traffic split (HTTPRoute balancereader-canary, 90/10), if the config still has it. */
function canaryHint(routes: ReadonlyArray<{ binding: ServicePortBinding; local: HostPort }>): string[] {
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
