// `node-waypoint run`: the waypoint process. Every flag also reads WAYPOINT_<FLAG> from the
// environment (the container sets those); flags win.
import { parseArgs } from 'node:util';
import { fileCredentials } from '../identity/credentials.ts';
import { parseAccessLogMode } from '../observe/access-log.ts';
import { createLogger, parseLogLevel } from '../observe/logger.ts';
import { Waypoint } from '../waypoint.ts';
import { checked, fromEnv, parseListen, parsePort, parseRef, parseSeconds, UsageError } from './flags.ts';

export const RUN_USAGE = `Usage: node-waypoint run --config PATH --gateway NAMESPACE/NAME --cert FILE --key FILE --ca FILE [flags]

  --config PATH              Kubernetes YAML/JSON manifests, file or directory (repeatable; watched)  [WAYPOINT_CONFIG, comma-separated]
  --gateway NS/NAME          The waypoint Gateway this process is                                    [WAYPOINT_GATEWAY]
  --cert FILE                Certificate chain (PEM, leaf first), reloaded on change                   [WAYPOINT_CERT]
  --key FILE                 Private key (PEM)                                                         [WAYPOINT_KEY]
  --ca FILE                  Trust bundle (PEM)                                                        [WAYPOINT_CA]
  --hbone ADDR:PORT          HBONE listener (default 0.0.0.0:15008)                                    [WAYPOINT_HBONE]
  --admin ADDR:PORT          Readiness and /config_dump (default 0.0.0.0:15021)                        [WAYPOINT_ADMIN]
  --metrics ADDR:PORT        Prometheus /stats/prometheus (default 0.0.0.0:15020)                      [WAYPOINT_METRICS]
  --endpoint-hbone-port N    Where endpoints terminate HBONE (default 15008)                           [WAYPOINT_ENDPOINT_HBONE_PORT]
  --cluster-domain DOMAIN    Kubernetes cluster domain (default cluster.local)                         [WAYPOINT_CLUSTER_DOMAIN]
  --access-log MODE          errors (default: errors and local replies), all, off                      [WAYPOINT_ACCESS_LOG]
  --log-level LEVEL          debug, info (default), warn, error                                        [WAYPOINT_LOG_LEVEL]
  --drain-deadline SECONDS   Time in-flight requests and TCP tunnels get after SIGTERM (default 20)    [WAYPOINT_DRAIN_DEADLINE]
`;

export async function runRun(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      config: { type: 'string', multiple: true },
      gateway: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      ca: { type: 'string' },
      hbone: { type: 'string' },
      admin: { type: 'string' },
      metrics: { type: 'string' },
      'endpoint-hbone-port': { type: 'string' },
      'cluster-domain': { type: 'string' },
      'access-log': { type: 'string' },
      'log-level': { type: 'string' },
      'drain-deadline': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(RUN_USAGE);
    return 0;
  }
  const need = (name: string, v: string | undefined): string => {
    if (v === undefined || v === '') throw new UsageError(`run: --${name} is required\n\n${RUN_USAGE}`);
    return v;
  };
  const configPaths = values.config ?? env.WAYPOINT_CONFIG?.split(',').filter(Boolean) ?? [];
  if (configPaths.length === 0) throw new UsageError(`run: --config is required\n\n${RUN_USAGE}`);
  // Every flag is checked before anything is read or bound, so a typo fails fast with exit 2.
  const files = {
    cert: need('cert', fromEnv('cert', values.cert, env)),
    key: need('key', fromEnv('key', values.key, env)),
    ca: need('ca', fromEnv('ca', values.ca, env)),
  };
  const gateway = parseRef('--gateway', need('gateway', fromEnv('gateway', values.gateway, env)));
  const listen = {
    hbone: host(parseListen('--hbone', fromEnv('hbone', values.hbone, env, '0.0.0.0:15008')!)),
    admin: host(parseListen('--admin', fromEnv('admin', values.admin, env, '0.0.0.0:15021')!)),
    metrics: host(parseListen('--metrics', fromEnv('metrics', values.metrics, env, '0.0.0.0:15020')!)),
  };
  const endpointHbonePort = parsePort(
    '--endpoint-hbone-port',
    fromEnv('endpoint-hbone-port', values['endpoint-hbone-port'], env, '15008')!,
  );
  const clusterDomain = fromEnv('cluster-domain', values['cluster-domain'], env, 'cluster.local')!;
  const accessLog = checked('--access-log', () =>
    parseAccessLogMode(fromEnv('access-log', values['access-log'], env)),
  );
  const drainDeadlineMs = parseSeconds(
    '--drain-deadline',
    fromEnv('drain-deadline', values['drain-deadline'], env, '20')!,
  );
  const log = createLogger(
    checked('--log-level', () => parseLogLevel(fromEnv('log-level', values['log-level'], env))),
  );
  const credentials = await fileCredentials(files, log);
  const waypoint = new Waypoint({
    configPaths,
    gateway,
    ...listen,
    endpointHbonePort,
    clusterDomain,
    accessLog,
    drainDeadlineMs,
    credentials,
    log,
  });
  await waypoint.start();
  return await untilSignal(async () => {
    // Exit 0 even when the deadline cut requests off: the drain did what it was asked to.
    await waypoint.shutdown();
    credentials.close();
    return 0;
  }, log);
}

function host(h: { ip: string; port: number }): { host: string; port: number } {
  return { host: h.ip, port: h.port };
}

/** Waits for SIGTERM or SIGINT, runs the shutdown once, and returns its exit code. A second signal exits at once. */
export function untilSignal(
  shutdown: () => Promise<number>,
  log: { info(m: string, f?: Record<string, unknown>): void },
): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.info('second signal: exiting now', { signal });
        process.exit(1);
      }
      stopping = true;
      log.info('shutdown requested', { signal });
      shutdown().then(resolve, () => resolve(1));
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
