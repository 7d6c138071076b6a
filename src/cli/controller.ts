// `node-waypoint controller`: the Kubernetes side of the configuration (src/controller/).
import { parseArgs } from 'node:util';
import { startController } from '../controller/controller.ts';
import { loadKubeConfig } from '../controller/kube-config.ts';
import { createLogger } from '../observe/logger.ts';
import { checked, fromEnv, parseListen, parseRef } from './flags.ts';
import { credentialsFor, IDENTITY_OPTIONS, identitySource } from './identity-flags.ts';
import { untilSignal } from './run.ts';
import { clusterDomainFrom, logLevelFrom, SHARED_FLAGS } from './shared-flags.ts';
import { CONTROLLER_USAGE } from './usage.ts';

export const CONTROLLER_OPTIONS = {
  kubeconfig: { type: 'string' },
  listen: { type: 'string' },
  health: { type: 'string' },
  ...IDENTITY_OPTIONS,
  'root-namespace': { type: 'string' },
  'cluster-domain': SHARED_FLAGS['cluster-domain'],
  'log-level': SHARED_FLAGS['log-level'],
  help: SHARED_FLAGS.help,
} as const;

export async function runController(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values } = parseArgs({ args: argv, strict: true, options: CONTROLLER_OPTIONS });
  if (values.help) {
    process.stdout.write(CONTROLLER_USAGE);
    return 0;
  }
  // Files, or istiod's CA as the Deployment in deploy/base/controller.yaml sets it up.
  const identity = identitySource(values, env);
  const listen = parseListen('--listen', fromEnv('listen', values.listen, env, '0.0.0.0:15012')!);
  const health = parseListen('--health', fromEnv('health', values.health, env, '0.0.0.0:15014')!);
  const rootNamespace = fromEnv('root-namespace', values['root-namespace'], env, 'istio-system')!;
  parseRef('--root-namespace', `${rootNamespace}/x`);
  const clusterDomain = clusterDomainFrom(values['cluster-domain'], env);
  const log = createLogger(logLevelFrom(values['log-level'], env));
  const kubeConfig = checked('--kubeconfig', () => loadKubeConfig(values.kubeconfig, env));
  const credentials = await credentialsFor(identity, log);
  const controller = await startController({
    kubeConfig,
    listen,
    health,
    credentials,
    log,
    rootNamespace,
    clusterDomain,
  });
  log.info('controller: started', {
    apiServer: kubeConfig.getCurrentCluster()?.server,
    listen: `${controller.stream.address.ip}:${controller.stream.address.port}`,
    health: `${controller.health.ip}:${controller.health.port}`,
  });
  return await untilSignal(async () => {
    await controller.close();
    credentials.close();
    return 0;
  }, log);
}
