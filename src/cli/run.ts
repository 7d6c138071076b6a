// `node-waypoint run`: the waypoint process. Every flag also reads WAYPOINT_<FLAG> from the
// environment (the container sets those); flags win.
import { parseArgs } from 'node:util';
import { type ExtensionProvider, loadMeshConfig, MeshConfigError } from '../../filters/authz/mesh-config.ts';
import { fileCredentials } from '../identity/credentials.ts';
import { parseAccessLogMode } from '../observe/access-log.ts';
import { createLogger, parseLogLevel } from '../observe/logger.ts';
import { Waypoint } from '../waypoint.ts';
import {
  checked,
  fromEnv,
  parseCount,
  parseFailureMode,
  parseListen,
  parsePort,
  parseRedisUrl,
  parseRef,
  parseSeconds,
  UsageError,
} from './flags.ts';
import { RUN_USAGE } from './usage.ts';

export { RUN_USAGE };

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
      'stream-idle-timeout': { type: 'string' },
      'request-head-timeout': { type: 'string' },
      'max-pending-heads': { type: 'string' },
      'default-retry': { type: 'string' },
      'mesh-config': { type: 'string' },
      'redis-url': { type: 'string' },
      'redis-failure-mode': { type: 'string' },
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
  const streamIdleTimeoutMs = parseSeconds(
    '--stream-idle-timeout',
    fromEnv('stream-idle-timeout', values['stream-idle-timeout'], env, '300')!,
  );
  const requestHeadTimeoutMs = parseSeconds(
    '--request-head-timeout',
    fromEnv('request-head-timeout', values['request-head-timeout'], env, '10')!,
  );
  const maxPendingHeadsPerIdentity = parseCount(
    '--max-pending-heads',
    fromEnv('max-pending-heads', values['max-pending-heads'], env, '64')!,
  );
  const defaultRetry = fromEnv('default-retry', values['default-retry'], env, 'istio')!;
  if (defaultRetry !== 'istio' && defaultRetry !== 'safe')
    throw new UsageError(`--default-retry: expected istio or safe, got ${JSON.stringify(defaultRetry)}`);
  const meshConfig = fromEnv('mesh-config', values['mesh-config'], env);
  let extensionProviders: ExtensionProvider[] = [];
  if (meshConfig) {
    try {
      extensionProviders = await loadMeshConfig(meshConfig);
    } catch (err) {
      if (err instanceof MeshConfigError) throw new UsageError(`--mesh-config: ${err.message}`);
      throw err;
    }
  }
  const redisText = fromEnv('redis-url', values['redis-url'], env);
  const redisUrl = redisText ? parseRedisUrl('--redis-url', redisText) : undefined;
  const redisFailureMode = parseFailureMode(
    '--redis-failure-mode',
    fromEnv('redis-failure-mode', values['redis-failure-mode'], env, 'open')!,
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
    streamIdleTimeoutMs,
    requestHeadTimeoutMs,
    maxPendingHeadsPerIdentity,
    defaultRetry,
    extensionProviders,
    ...(meshConfig ? { meshConfigPath: meshConfig } : {}),
    ...(redisUrl ? { redisUrl } : {}),
    redisFailureMode,
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
