// `node-waypoint tunnel`: the ztunnel stand-in for local use, in either direction.
import { parseArgs } from 'node:util';
import { type Credentials, fileCredentials } from '../identity/credentials.ts';
import { createLogger, type Logger } from '../observe/logger.ts';
import { InboundTunnel } from '../ztunnel/inbound.ts';
import { OutboundTunnel } from '../ztunnel/outbound.ts';
import { parseListen, UsageError } from './flags.ts';
import { untilSignal } from './run.ts';
import { logLevelFrom, SHARED_FLAGS } from './shared-flags.ts';
import { TUNNEL_USAGE } from './usage.ts';

export { TUNNEL_USAGE };

export const TUNNEL_OPTIONS = {
  listen: { type: 'string' },
  waypoint: { type: 'string' },
  'waypoint-identity': { type: 'string' },
  to: { type: 'string' },
  forward: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  ca: { type: 'string' },
  'log-level': SHARED_FLAGS['log-level'],
  help: SHARED_FLAGS.help,
} as const;

export async function runTunnel(argv: string[]): Promise<number> {
  const [direction, ...rest] = argv;
  if (direction === '--help' || direction === '-h') {
    process.stdout.write(TUNNEL_USAGE);
    return 0;
  }
  if (direction !== 'outbound' && direction !== 'inbound') {
    throw new UsageError(
      `tunnel: expected \`outbound\` or \`inbound\`, got ${JSON.stringify(direction)}\n\n${TUNNEL_USAGE}`,
    );
  }
  const { values } = parseArgs({ args: rest, strict: true, options: TUNNEL_OPTIONS });
  if (values.help) {
    process.stdout.write(TUNNEL_USAGE);
    return 0;
  }
  const log = createLogger(logLevelFrom(values['log-level'], {}));
  const { tunnel, credentials } = await tunnelFor(direction, values, log);
  const bound = await tunnel.listen();
  log.info(`tunnel ${direction} listening`, {
    listen: `${bound.ip}:${bound.port}`,
    identity: credentials.identity.uri,
  });
  return untilSignal(async () => {
    await tunnel.close();
    credentials.close();
    return 0;
  }, log);
}

type TunnelValues = { [K in Exclude<keyof typeof TUNNEL_OPTIONS, 'help'>]?: string | undefined };

/** The tunnel the flags describe, with its credentials; every required flag is checked first. */
async function tunnelFor(
  direction: 'outbound' | 'inbound',
  values: TunnelValues,
  log: Logger,
): Promise<{ tunnel: OutboundTunnel | InboundTunnel; credentials: Credentials }> {
  const need = (name: keyof TunnelValues): string => {
    const v = values[name];
    if (typeof v !== 'string' || v === '')
      throw new UsageError(`tunnel ${direction}: --${name} is required\n\n${TUNNEL_USAGE}`);
    return v;
  };
  const credentials = await fileCredentials({ cert: need('cert'), key: need('key'), ca: need('ca') }, log);
  const listen = parseListen('--listen', need('listen'));
  const tunnel =
    direction === 'outbound'
      ? new OutboundTunnel({
          listen,
          waypoint: parseListen('--waypoint', need('waypoint')),
          waypointIdentity: need('waypoint-identity'),
          destination: parseListen('--to', need('to')),
          credentials,
          log,
        })
      : new InboundTunnel({
          listen,
          ...(values.forward ? { forward: parseListen('--forward', values.forward) } : {}),
          credentials,
          log,
        });
  return { tunnel, credentials };
}
