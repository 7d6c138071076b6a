// `node-waypoint run`: the waypoint process. Every flag also reads WAYPOINT_<FLAG> from the
// environment (the container sets those); flags win.
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import type { ObjectRef } from '../../config/model.ts';
import { type OtlpProvider, parseTracingProviders } from '../../config/tracing-providers.ts';
import { type ExtensionProvider, loadMeshConfig, MeshConfigError } from '../../filters/authz/mesh-config.ts';
import type { ComposeOptions } from '../compose.ts';
import type { Credentials } from '../identity/credentials.ts';
import { parseSpiffeId } from '../identity/spiffe.ts';
import { type AccessLogEncoding, parseAccessLogEncoding, parseAccessLogMode } from '../observe/access-log.ts';
import { createLogger, type Logger, type LogLevel } from '../observe/logger.ts';
import { meshAccessLogEncoding } from '../observe/mesh-access-log.ts';
import type { WaypointOptions } from '../waypoint.ts';
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
  parseSeconds,
  UsageError,
} from './flags.ts';
import { credentialsFor, IDENTITY_OPTIONS, type IdentitySource, identitySource } from './identity-flags.ts';
import { OVERLOAD_FLAGS, overloadSettings } from './overload-flags.ts';
import {
  clusterDomainFrom,
  configPathsFrom,
  gatewayFrom,
  logLevelFrom,
  SHARED_FLAGS,
} from './shared-flags.ts';
import { RUN_USAGE } from './usage.ts';

export { RUN_USAGE };

export const RUN_OPTIONS = {
  ...SHARED_FLAGS,
  controller: { type: 'string' },
  concurrency: { type: 'string' },
  'controller-identity': { type: 'string' },
  ...IDENTITY_OPTIONS,
  hbone: { type: 'string' },
  admin: { type: 'string' },
  metrics: { type: 'string' },
  ready: { type: 'string' },
  'access-log-encoding': { type: 'string' },
  'endpoint-hbone-port': { type: 'string' },
  'access-log': { type: 'string' },
  'drain-deadline': { type: 'string' },
  'stream-idle-timeout': { type: 'string' },
  'request-head-timeout': { type: 'string' },
  'max-pending-heads': { type: 'string' },
  'default-retry': { type: 'string' },
  'mesh-config': { type: 'string' },
  'redis-url': { type: 'string' },
  'redis-failure-mode': { type: 'string' },
  ...OVERLOAD_FLAGS,
} as const;

type RunValues = ReturnType<
  typeof parseArgs<{ args: string[]; strict: true; options: typeof RUN_OPTIONS }>
>['values'];

/** Everything `run` needs, checked: a typo fails fast with exit 2 before anything is read or bound. */
export interface RunSettings {
  readonly identity: IdentitySource;
  readonly controller: { address: string; identity: string | undefined } | undefined;
  readonly logLevel: LogLevel;
  /** --concurrency as given (src/workers/ parses it); undefined: the container's CPUs. */
  readonly concurrency: string | undefined;
  /** The Waypoint's options but its credentials, log and configuration source. */
  readonly options: Omit<ComposeOptions, 'credentials' | 'log' | 'configSource'> &
    ReturnType<typeof listenFlags> & { readonly drainDeadlineMs: number };
}

export async function runRun(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const settings = await runSettings(argv, env);
  if (!settings) {
    process.stdout.write(RUN_USAGE);
    return 0;
  }
  const log = createLogger(settings.logLevel);
  // --concurrency N > 1: this process supervises N workers that each run everything below.
  const { hbone, admin, ready, metrics, drainDeadlineMs } = settings.options;
  const listen = { hbone, admin, ready, metrics };
  const primary = await runWorkersIfConcurrent({
    concurrency: settings.concurrency,
    argv,
    env,
    listen,
    drainDeadlineMs,
    log,
  });
  if (primary !== undefined) return primary;
  // Loaded only here: a primary never builds a waypoint, so it does not carry the engine's modules.
  const { composeWaypoint } = await import('../compose.ts');
  const credentials = await credentialsFor(settings.identity, log);
  const waypoint = composeWaypoint({
    ...settings.options,
    credentials,
    log,
    ...workerWaypointOptions(),
    ...(await controllerSource(settings.controller, credentials, log, env)),
  });
  await waypoint.start();
  workerStarted(waypoint, {
    gateway: `${settings.options.gateway.namespace}/${settings.options.gateway.name}`,
    identity: credentials.identity.uri,
  });
  return await untilSignal(async () => {
    // Exit 0 even when the deadline cut requests off: the drain did what it was asked to.
    await waypoint.shutdown();
    credentials.close();
    return 0;
  }, log);
}

/** `run`'s flags (and WAYPOINT_* variables) checked and parsed; undefined for --help. */
export async function runSettings(argv: string[], env: NodeJS.ProcessEnv): Promise<RunSettings | undefined> {
  const { values } = parseArgs({ args: argv, strict: true, options: RUN_OPTIONS });
  if (values.help) return undefined;
  const { configPaths, controller } = await configSourceFlags(values, env);
  const identity = identitySource(values, env);
  const gateway = gatewayFlag(values, env);
  const listen = listenFlags(values, env);
  const accessLog = checked('--access-log', () =>
    parseAccessLogMode(fromEnv('access-log', values['access-log'], env)),
  );
  const mesh = await meshConfigFlags(values, env);
  return {
    identity,
    controller,
    logLevel: logLevelFrom(values['log-level'], env),
    concurrency: fromEnv('concurrency', values.concurrency, env),
    options: {
      configPaths,
      gateway,
      ...listen,
      clusterDomain: clusterDomainFrom(values['cluster-domain'], env),
      clusterId: clusterIdFrom(values['cluster-id'], env),
      accessLog,
      ...mesh,
      ...timeoutFlags(values, env),
      ...redisFlags(values, env),
      ...overloadSettings(values, env),
    },
  };
}

/** --config or --controller (exactly one), and the identity the controller must present. */
async function configSourceFlags(
  values: RunValues,
  env: NodeJS.ProcessEnv,
): Promise<{ configPaths: string[]; controller: RunSettings['controller'] }> {
  const configPaths = configPathsFrom(values.config, env);
  const controllerText = fromEnv('controller', values.controller, env);
  if (configPaths.length === 0 && !controllerText)
    throw new UsageError(`run: --config is required (or --controller HOST:PORT)\n\n${RUN_USAGE}`);
  if (configPaths.length > 0 && controllerText)
    throw new UsageError(
      'run: --config and --controller exclude each other: the configuration comes from one',
    );
  const controllerIdentity = fromEnv('controller-identity', values['controller-identity'], env);
  if (controllerIdentity !== undefined && !parseSpiffeId(controllerIdentity))
    throw new UsageError(
      `--controller-identity: expected spiffe://TD/ns/NS/sa/SA, got ${JSON.stringify(controllerIdentity)}`,
    );
  // The config-stream client (and @grpc/grpc-js) is loaded only for --controller: ~20 MB of RSS.
  const client = controllerText ? await import('../controller/config-client.ts') : undefined;
  const controller = controllerText
    ? {
        address: checked('--controller', () => client!.checkControllerAddress(controllerText)),
        identity: controllerIdentity,
      }
    : undefined;
  return { configPaths, controller };
}

/** --gateway, else Istio's template's: there the Deployment (ISTIO_META_WORKLOAD_NAME) is named after it. */
function gatewayFlag(values: RunValues, env: NodeJS.ProcessEnv): ObjectRef {
  const templateGateway =
    env.POD_NAMESPACE && env.ISTIO_META_WORKLOAD_NAME
      ? `${env.POD_NAMESPACE}/${env.ISTIO_META_WORKLOAD_NAME}`
      : undefined;
  const gateway = gatewayFrom(values.gateway, env, templateGateway);
  if (!gateway) throw new UsageError(`run: --gateway is required\n\n${RUN_USAGE}`);
  return gateway;
}

function listenFlags(values: RunValues, env: NodeJS.ProcessEnv) {
  const listen = (name: 'hbone' | 'admin' | 'ready' | 'metrics', fallback: string) => {
    const { ip, port } = parseListen(`--${name}`, fromEnv(name, values[name], env, fallback)!);
    return { host: ip, port };
  };
  return {
    hbone: listen('hbone', '0.0.0.0:15008'),
    admin: listen('admin', '127.0.0.1:15000'),
    ready: listen('ready', '0.0.0.0:15021'),
    metrics: listen('metrics', '0.0.0.0:15020'),
    endpointHbonePort: parsePort(
      '--endpoint-hbone-port',
      fromEnv('endpoint-hbone-port', values['endpoint-hbone-port'], env, '15008')!,
    ),
  };
}

function timeoutFlags(values: RunValues, env: NodeJS.ProcessEnv) {
  const seconds = (
    name: 'drain-deadline' | 'stream-idle-timeout' | 'request-head-timeout',
    fallback: string,
  ) => parseSeconds(`--${name}`, fromEnv(name, values[name], env, fallback)!);
  const defaultRetry = fromEnv('default-retry', values['default-retry'], env, 'istio')!;
  if (defaultRetry !== 'istio' && defaultRetry !== 'safe')
    throw new UsageError(`--default-retry: expected istio or safe, got ${JSON.stringify(defaultRetry)}`);
  return {
    drainDeadlineMs: seconds('drain-deadline', '20'),
    streamIdleTimeoutMs: seconds('stream-idle-timeout', '300'),
    requestHeadTimeoutMs: seconds('request-head-timeout', '10'),
    maxPendingHeadsPerIdentity: parseCount(
      '--max-pending-heads',
      fromEnv('max-pending-heads', values['max-pending-heads'], env, '64')!,
    ),
    defaultRetry: defaultRetry as 'istio' | 'safe',
  };
}

/** --mesh-config: ext_authz and tracing providers, and the access log encoding unless a flag sets it. */
async function meshConfigFlags(values: RunValues, env: NodeJS.ProcessEnv) {
  const meshConfig = fromEnv('mesh-config', values['mesh-config'], env);
  const encodingFlag = fromEnv('access-log-encoding', values['access-log-encoding'], env);
  const accessLogEncoding = encodingFlag
    ? checked('--access-log-encoding', () => parseAccessLogEncoding(encodingFlag))
    : await meshEncoding(meshConfig);
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
  return {
    accessLogEncoding,
    extensionProviders,
    tracingProviders,
    ...(meshConfig ? { meshConfigPath: meshConfig } : {}),
  };
}

function redisFlags(values: RunValues, env: NodeJS.ProcessEnv) {
  const redisText = fromEnv('redis-url', values['redis-url'], env);
  return {
    ...(redisText ? { redisUrl: parseRedisUrl('--redis-url', redisText) } : {}),
    redisFailureMode: parseFailureMode(
      '--redis-failure-mode',
      fromEnv('redis-failure-mode', values['redis-failure-mode'], env, 'open')!,
    ),
  };
}

/** The controller's configuration stream, when run takes its configuration from one. */
async function controllerSource(
  controller: RunSettings['controller'],
  credentials: Credentials,
  log: Logger,
  env: NodeJS.ProcessEnv,
): Promise<{ configSource?: WaypointOptions['configSource'] }> {
  if (!controller) return {};
  const { controllerConfigSource, defaultControllerIdentity } = await import(
    '../controller/config-client.ts'
  );
  return {
    configSource: controllerConfigSource({
      address: controller.address,
      identity: controller.identity ?? defaultControllerIdentity(credentials.identity.trustDomain),
      credentials,
      log,
      node: env.POD_NAME ?? hostname(),
    }),
  };
}

/** The mesh config's accessLogEncoding (text when there is no mesh config or it does not say). */
async function meshEncoding(path: string | undefined): Promise<AccessLogEncoding> {
  if (!path) return 'text';
  const text = await readFile(path, 'utf8').catch(() => '');
  return checked('--mesh-config', () => meshAccessLogEncoding(text)) ?? 'text';
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
