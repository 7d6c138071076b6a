// `node-waypoint dev-ca`: a CA and SPIFFE certificates for demos, tests and trying the waypoint
// locally. Never for production: the CA key is written next to the certificates.
import { parseArgs } from 'node:util';
import { writeDevCa } from '../identity/dev-ca.ts';
import { parseSpiffeId } from '../identity/spiffe.ts';
import { UsageError } from './flags.ts';
import { SHARED_FLAGS } from './shared-flags.ts';
import { DEV_CA_USAGE } from './usage.ts';

export { DEV_CA_USAGE };

export const DEV_CA_OPTIONS = {
  out: { type: 'string' },
  identity: { type: 'string', multiple: true },
  days: { type: 'string' },
  help: SHARED_FLAGS.help,
} as const;

export async function runDevCa(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, strict: true, options: DEV_CA_OPTIONS });
  if (values.help) {
    process.stdout.write(DEV_CA_USAGE);
    return 0;
  }
  if (!values.out) throw new UsageError(`dev-ca: --out is required\n\n${DEV_CA_USAGE}`);
  const identities = values.identity ?? [];
  if (identities.length === 0)
    throw new UsageError(`dev-ca: at least one --identity is required\n\n${DEV_CA_USAGE}`);
  for (const id of identities) {
    if (!parseSpiffeId(id))
      throw new UsageError(
        `dev-ca: --identity ${JSON.stringify(id)} is not spiffe://TRUST_DOMAIN/ns/NS/sa/SA`,
      );
  }
  const tds = new Set(identities.map((id) => parseSpiffeId(id)!.trustDomain));
  if (tds.size > 1)
    throw new UsageError(`dev-ca: all identities must share one trust domain (got ${[...tds].join(', ')})`);
  const days = values.days === undefined ? undefined : Number(values.days);
  if (days !== undefined && !(days > 0)) throw new UsageError(`dev-ca: --days must be a positive number`);
  const result = await writeDevCa(values.out, identities, days ? { validityDays: days } : {});
  process.stdout.write(`trust bundle: ${result.rootCert}\n`);
  for (const f of result.files) process.stdout.write(`${f.identity}\n  cert: ${f.cert}\n  key:  ${f.key}\n`);
  return 0;
}
