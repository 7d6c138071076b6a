// node-waypoint's command line: `run` (the waypoint), `demo` (npm start: the waypoint with Bank of
// Anthos on loopback), `dev-ca` (certificates for local use), `tunnel` (a ztunnel stand-in).
import { runDemo } from './demo.ts';
import { runDevCa } from './dev-ca.ts';
import { UsageError } from './flags.ts';
import { runRun } from './run.ts';
import { runTunnel } from './tunnel.ts';

export const USAGE = `Usage: node-waypoint <command> [flags]

Commands:
  run       Run the waypoint (HBONE on 15008, readiness on 15021, metrics on 15020).
  demo      Run the waypoint with the Bank of Anthos demo on loopback (what \`npm start\` does).
  dev-ca    Write a CA and SPIFFE certificates for local runs and tests.
  tunnel    A ztunnel stand-in: \`tunnel outbound\` (TCP in, HBONE out) or \`tunnel inbound\` (HBONE in, TCP out).

Run \`node-waypoint <command> --help\` for a command's flags.
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run':
        return await runRun(rest);
      case 'demo':
        return await runDemo(rest);
      case 'dev-ca':
        return await runDevCa(rest);
      case 'tunnel':
        return await runTunnel(rest);
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (err) {
    if (err instanceof UsageError || (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`node-waypoint: ${(err as Error).message}\n\n${USAGE}`);
      return 2;
    }
    process.stderr.write(`node-waypoint: ${(err as Error).message}\n`);
    return 1;
  }
}
