// The flags several commands take (run, demo, explain, validate, controller), defined once: their
// parseArgs specs and the one parser each, so a flag reads the same value from its
// WAYPOINT_<FLAG> variable and fails with the same message whichever command is run.
import type { ObjectRef } from '../../config/model.ts';
import { type LogLevel, parseLogLevel } from '../observe/logger.ts';
import { checked, fromEnv, parseRef, UsageError } from './flags.ts';

/** parseArgs option specs: spread the ones a command takes into its options. */
export const SHARED_FLAGS = {
  config: { type: 'string', multiple: true },
  gateway: { type: 'string' },
  'trust-domain': { type: 'string' },
  'cluster-domain': { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** --config (repeatable), else WAYPOINT_CONFIG (comma-separated); [] when neither is given. */
export function configPathsFrom(values: readonly string[] | undefined, env: NodeJS.ProcessEnv): string[] {
  return values ? [...values] : (env.WAYPOINT_CONFIG?.split(',').filter(Boolean) ?? []);
}

/** Like configPathsFrom, for a command that cannot do without one. */
export function requiredConfigPaths(
  command: string,
  values: readonly string[] | undefined,
  env: NodeJS.ProcessEnv,
): string[] {
  const paths = configPathsFrom(values, env);
  if (paths.length === 0) throw new UsageError(`${command}: --config is required`);
  return paths;
}

/** --gateway NS/NAME, else WAYPOINT_GATEWAY, else `fallback`; undefined when none is given. */
export function gatewayFrom(
  value: string | undefined,
  env: NodeJS.ProcessEnv,
  fallback?: string,
): ObjectRef | undefined {
  const text = fromEnv('gateway', value, env, fallback);
  return text ? parseRef('--gateway', text) : undefined;
}

/** --cluster-domain, else WAYPOINT_CLUSTER_DOMAIN, else cluster.local. */
export function clusterDomainFrom(value: string | undefined, env: NodeJS.ProcessEnv): string {
  return fromEnv('cluster-domain', value, env, 'cluster.local')!;
}

/** --trust-domain, else WAYPOINT_TRUST_DOMAIN, else cluster.local. */
export function trustDomainFrom(value: string | undefined, env: NodeJS.ProcessEnv): string {
  return fromEnv('trust-domain', value, env, 'cluster.local')!;
}

/** --log-level, else WAYPOINT_LOG_LEVEL, else `fallback` (info unless the command says). */
export function logLevelFrom(
  value: string | undefined,
  env: NodeJS.ProcessEnv,
  fallback?: LogLevel,
): LogLevel {
  return checked('--log-level', () => parseLogLevel(fromEnv('log-level', value, env, fallback)));
}
