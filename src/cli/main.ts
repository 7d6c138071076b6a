// node-waypoint's command line: `run` (the waypoint), `demo` (npm start: the waypoint with Bank of
// Anthos on loopback), `dev-ca` (certificates for local use), `tunnel` (a ztunnel stand-in).
// Commands are imported when run: `run` must not pay for the dev CA's X.509 library, nor `dev-ca`
// for undici and the config compiler.
import { UsageError } from './flags.ts';
import {
  CONTROLLER_USAGE,
  DEMO_USAGE,
  DEV_CA_USAGE,
  EXPLAIN_USAGE,
  RUN_USAGE,
  TUNNEL_USAGE,
  VALIDATE_USAGE,
} from './usage.ts';

const COMMAND_USAGE: Record<string, string> = {
  run: RUN_USAGE,
  demo: DEMO_USAGE,
  'dev-ca': DEV_CA_USAGE,
  tunnel: TUNNEL_USAGE,
  explain: EXPLAIN_USAGE,
  validate: VALIDATE_USAGE,
  controller: CONTROLLER_USAGE,
};

export const USAGE = `Usage: node-waypoint <command> [flags]

Commands:
  run       Run the waypoint (HBONE on 15008, readiness on 15021, metrics on 15020, admin on 127.0.0.1:15000).
  demo      Run the waypoint with the Bank of Anthos demo on loopback (what \`npm start\` does).
  explain   What the waypoint would decide for one request: policies, evaluation order, verdict.
  validate  Load the configuration as \`run\` would and print every problem.
  dev-ca    Write a CA and SPIFFE certificates for local runs and tests.
  tunnel    A ztunnel stand-in: \`tunnel outbound\` (TCP in, HBONE out) or \`tunnel inbound\` (HBONE in, TCP out).
  controller  Watch the Kubernetes API and stream each waypoint its configuration (gRPC, mTLS).

Run \`node-waypoint <command> --help\` for a command's flags.
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run':
        return await (await import('./run.ts')).runRun(rest);
      case 'demo':
        return await (await import('./demo.ts')).runDemo(rest);
      case 'proxy': {
        // Istio's waypoint template (1.22–1.25, image swapped by annotation): `proxy waypoint …`.
        const { runArgsOfIstioProxy } = await import('./istio-proxy-args.ts');
        return await (await import('./run.ts')).runRun(runArgsOfIstioProxy(rest));
      }
      case 'dev-ca':
        return await (await import('./dev-ca.ts')).runDevCa(rest);
      case 'tunnel':
        return await (await import('./tunnel.ts')).runTunnel(rest);
      case 'explain':
        return await (await import('./explain.ts')).runExplain(rest);
      case 'validate':
        return await (await import('./validate.ts')).runValidate(rest);
      case 'controller':
        return await (await import('./controller.ts')).runController(rest);
      case undefined:
        // No command is a usage error: the help goes to stderr, stdout stays empty.
        process.stderr.write(USAGE);
        return 2;
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(USAGE);
        return 0;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (err) {
    if (err instanceof UsageError || (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      // The message, then the usage of the command that was run (once), else the command list.
      const message = (err as Error).message.trimEnd();
      const usage =
        command !== undefined && Object.hasOwn(COMMAND_USAGE, command) ? COMMAND_USAGE[command]! : USAGE;
      const prefix = err instanceof UsageError || command === undefined ? '' : `${command}: `;
      process.stderr.write(
        message.includes('Usage:')
          ? `node-waypoint: ${prefix}${message}\n`
          : `node-waypoint: ${prefix}${message}\n\n${usage}`,
      );
      return 2;
    }
    process.stderr.write(`node-waypoint: ${(err as Error).message}\n`);
    return 1;
  }
}
