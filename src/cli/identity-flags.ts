// How a command gets its identity: --cert/--key/--ca files, or istiod's CA with flags that default
// to the environment Istio's waypoint template sets (CA_ADDR, TRUST_DOMAIN, ISTIO_META_CLUSTER_ID,
// SERVICE_ACCOUNT, POD_NAMESPACE) and the files it mounts. Shared by `run` and the controller.
import { type Credentials, fileCredentials } from '../identity/credentials.ts';
import type { Logger } from '../observe/logger.ts';
import { clusterIdFrom, fromEnv, UsageError } from './flags.ts';

/** parseArgs option specs to spread into a command's options. */
export const IDENTITY_OPTIONS = {
  cert: { type: 'string' },
  key: { type: 'string' },
  ca: { type: 'string' },
  'ca-addr': { type: 'string' },
  'ca-root': { type: 'string' },
  'ca-token': { type: 'string' },
  'trust-domain': { type: 'string' },
  'cluster-id': { type: 'string' },
  'service-account': { type: 'string' },
} as const;

export type IdentityValues = { [K in keyof typeof IDENTITY_OPTIONS]?: string | undefined };

export type IdentitySource =
  | { kind: 'files'; cert: string; key: string; ca: string }
  | {
      kind: 'ca';
      addr: string;
      rootFile: string;
      tokenFile: string;
      trustDomain: string;
      clusterId: string;
      namespace: string;
      serviceAccount: string;
      /** The name checked in the CA's certificate when it is not CA_ADDR's host (Istio's ISTIOD_SAN). */
      serverName?: string;
    };

const NAME = /^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/;

/** Checks the flags (usage errors exit 2 before anything is read); files win when any is given. */
export function identitySource(values: IdentityValues, env: NodeJS.ProcessEnv): IdentitySource {
  const cert = fromEnv('cert', values.cert, env);
  const key = fromEnv('key', values.key, env);
  const ca = fromEnv('ca', values.ca, env);
  if (cert || key || ca) {
    if (!cert || !key || !ca)
      throw new UsageError("--cert, --key and --ca go together (or none, for istiod's CA)");
    return { kind: 'files', cert, key, ca };
  }
  const pick = (
    flag: keyof IdentityValues,
    istioEnv: string | undefined,
    fallback?: string,
  ): string | undefined =>
    values[flag] ?? env[`WAYPOINT_${flag.replace(/-/g, '_').toUpperCase()}`] ?? istioEnv ?? fallback;
  const namespace = env.POD_NAMESPACE;
  const serviceAccount = pick('service-account', env.SERVICE_ACCOUNT);
  if (!namespace || !NAME.test(namespace))
    throw new UsageError("without --cert/--key/--ca, POD_NAMESPACE must name the namespace for istiod's CA");
  if (!serviceAccount || !NAME.test(serviceAccount))
    throw new UsageError('without --cert/--key/--ca, --service-account (or SERVICE_ACCOUNT) is required');
  const addr = pick('ca-addr', env.CA_ADDR, 'istiod.istio-system.svc:15012')!.replace(/^https?:\/\//, '');
  if (!/:\d{1,5}$/.test(addr))
    throw new UsageError(`--ca-addr: expected HOST:PORT, got ${JSON.stringify(addr)}`);
  return {
    kind: 'ca',
    addr,
    rootFile: pick('ca-root', undefined, '/var/run/secrets/istio/root-cert.pem')!,
    tokenFile: pick('ca-token', undefined, '/var/run/secrets/tokens/istio-token')!,
    trustDomain: pick('trust-domain', env.TRUST_DOMAIN, 'cluster.local')!,
    clusterId: clusterIdFrom(values['cluster-id'], env),
    namespace,
    serviceAccount,
    ...(env.ISTIOD_SAN ? { serverName: env.ISTIOD_SAN } : {}),
  };
}

/** Live credentials for the source: files (reloaded on change) or istiod's CA (renewed). */
export async function credentialsFor(source: IdentitySource, log: Logger): Promise<Credentials> {
  if (source.kind === 'files') return fileCredentials(source, log);
  log.info('identity: certificates from the CA', {
    ca: source.addr,
    identity: `spiffe://${source.trustDomain}/ns/${source.namespace}/sa/${source.serviceAccount}`,
    cluster_id: source.clusterId,
  });
  // Loaded only here: the CA client and its X.509 library are megabytes a file-certificate run skips.
  const { caCredentials } = await import('../identity/ca-credentials.ts');
  return caCredentials({ ...source, log });
}
