// `node-waypoint run`: the waypoint process. Every flag also reads WAYPOINT_<FLAG> from the
// environment (the container sets those); flags win.
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { type OtlpProvider, parseTracingProviders } from '../../config/tracing-providers.ts';
import { type ExtensionProvider, loadMeshConfig, MeshConfigError } from '../../filters/authz/mesh-config.ts';
import { composeWaypoint } from '../compose.ts';
import { parseSpiffeId } from '../identity/spiffe.ts';
import { type AccessLogEncoding, parseAccessLogEncoding, parseAccessLogMode } from '../observe/access-log.ts';
import { createLogger, parseLogLevel } from '../observe/logger.ts';
import { meshAccessLogEncoding } from '../observe/mesh-access-log.ts';
import { runWorkersIfConcurrent, workerStarted, workerWaypointOptions } from '../workers/run-hook.ts';
import {
  checked,
  clusterIdFrom,
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
import { credentialsFor, IDENTITY_OPTIONS, identitySource } from './identity-flags.ts';
import { OVERLOAD_FLAGS, overloadSettings } from './overload-flags.ts';
import { RUN_USAGE } from './usage.ts';

export { RUN_USAGE };

export async function runRun(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      config: { type: 'string', multiple: true },
      controller: { type: 'string' },
      'controller-identity': { type: 'string' },
      gateway: { type: 'string' },
      ...IDENTITY_OPTIONS,
      hbone: { type: 'string' },
      admin: { type: 'string' },
      metrics: { type: 'string' },
      ready: { type: 'string' },
      'access-log-encoding': { type: 'string' },
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
      concurrency: { type: 'string' },
      ...OVERLOAD_FLAGS,
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
  const controllerText = fromEnv('controller', values.controller, env);
  if (configPaths.length === 0 && !controllerText)
    throw new UsageError(`run: --config is required (or --controller HOST:PORT)\n\n${RUN_USAGE}`);
  if (configPaths.length > 0 && controllerText)
    throw new UsageError(
      'run: --config and --controller exclude each other: the configuration comes from one',
    );
  // The config-stream client (and @grpc/grpc-js) is loaded only for --controller: ~20 MB of RSS.
  const client = controllerText ? await import('../controller/config-client.ts') : undefined;
  const controller = controllerText
    ? checked('--controller', () => client!.checkControllerAddress(controllerText))
    : undefined;
  const controllerIdentity = fromEnv('controller-identity', values['controller-identity'], env);
  if (controllerIdentity !== undefined && !parseSpiffeId(controllerIdentity))
    throw new UsageError(
      `--controller-identity: expected spiffe://TD/ns/NS/sa/SA, got ${JSON.stringify(controllerIdentity)}`,
    );
  // Every flag is checked before anything is read or bound, so a typo fails fast with exit 2.
  const identity = identitySource(values, env);
  // In Istio's template the Deployment (ISTIO_META_WORKLOAD_NAME) is named after the Gateway.
  const templateGateway =
    env.POD_NAMESPACE && env.ISTIO_META_WORKLOAD_NAME
      ? `${env.POD_NAMESPACE}/${env.ISTIO_META_WORKLOAD_NAME}`
      : undefined;
  const gateway = parseRef(
    '--gateway',
    need('gateway', fromEnv('gateway', values.gateway, env, templateGateway)),
  );
  const listen = {
    hbone: host(parseListen('--hbone', fromEnv('hbone', values.hbone, env, '0.0.0.0:15008')!)),
    admin: host(parseListen('--admin', fromEnv('admin', values.admin, env, '127.0.0.1:15000')!)),
    ready: host(parseListen('--ready', fromEnv('ready', values.ready, env, '0.0.0.0:15021')!)),
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
  const encodingFlag = fromEnv('access-log-encoding', values['access-log-encoding'], env);
  const accessLogEncoding = encodingFlag
    ? checked('--access-log-encoding', () => parseAccessLogEncoding(encodingFlag))
    : await meshEncoding(fromEnv('mesh-config', values['mesh-config'], env));
  const clusterId = clusterIdFrom(values['cluster-id'], env);
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
  let tracingProviders: OtlpProvider[] = [];
  if (meshConfig) {
    try {
      extensionProviders = await loadMeshConfig(meshConfig);
      tracingProviders = parseTracingProviders(await readFile(meshConfig, 'utf8'));
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
  const overload = overloadSettings(values, env);
  const log = createLogger(
    checked('--log-level', () => parseLogLevel(fromEnv('log-level', values['log-level'], env))),
  );
  // --concurrency N > 1: this process supervises N workers that each run everything below.
  const concurrency = fromEnv('concurrency', values.concurrency, env);
  const primary = await runWorkersIfConcurrent({ concurrency, argv, env, listen, drainDeadlineMs, log });
  if (primary !== undefined) return primary;
  const credentials = await credentialsFor(identity, log);
  const waypoint = composeWaypoint({
    configPaths,
    gateway,
    ...listen,
    endpointHbonePort,
    clusterDomain,
    clusterId,
    accessLog,
    accessLogEncoding,
    drainDeadlineMs,
    streamIdleTimeoutMs,
    requestHeadTimeoutMs,
    maxPendingHeadsPerIdentity,
    defaultRetry,
    extensionProviders,
    tracingProviders,
    ...(meshConfig ? { meshConfigPath: meshConfig } : {}),
    ...(redisUrl ? { redisUrl } : {}),
    redisFailureMode,
    ...overload,
    credentials,
    log,
    ...workerWaypointOptions(),
    ...(controller
      ? {
          configSource: client!.controllerConfigSource({
            address: controller,
            identity:
              controllerIdentity ?? client!.defaultControllerIdentity(credentials.identity.trustDomain),
            credentials,
            log,
            node: env.POD_NAME ?? hostname(),
          }),
        }
      : {}),
  });
  await waypoint.start();
  workerStarted(waypoint);
  return await untilSignal(async () => {
    // Exit 0 even when the deadline cut requests off: the drain did what it was asked to.
    await waypoint.shutdown();
    credentials.close();
    return 0;
  }, log);
}

/** The mesh config's accessLogEncoding (text when there is no mesh config or it does not say). */
async function meshEncoding(path: string | undefined): Promise<AccessLogEncoding> {
  if (!path) return 'text';
  const text = await readFile(path, 'utf8').catch(() => '');
  return checked('--mesh-config', () => meshAccessLogEncoding(text)) ?? 'text';
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
