// `node-waypoint explain`: what the waypoint would decide for one hypothetical request, on the
// configuration `run` would load (same source, same compilers, same filter chain). Exit 0 when
// allowed, 3 when denied, 2 on usage errors, 1 when the configuration or destination is unusable.
import { parseArgs } from 'node:util';
import type { Snapshot } from '../../config/model.ts';
import { FILTER_ORDER } from '../../filters/index.ts';
import {
  ExplainDestinationError,
  type ExplainInput,
  ExplainInputError,
  explainRequest,
  formatExplain,
} from '../explain/explain.ts';
import { loadOnce } from '../explain/load-once.ts';
import { parseSpiffeId } from '../identity/spiffe.ts';
import { silentLogger } from '../observe/logger.ts';
import { UsageError } from './flags.ts';
import { clusterDomainFrom, gatewayFrom, requiredConfigPaths, SHARED_FLAGS } from './shared-flags.ts';
import { EXPLAIN_USAGE } from './usage.ts';

export const EXIT_DENIED = 3;

export const EXPLAIN_OPTIONS = {
  config: SHARED_FLAGS.config,
  gateway: SHARED_FLAGS.gateway,
  'cluster-domain': SHARED_FLAGS['cluster-domain'],
  help: SHARED_FLAGS.help,
  from: { type: 'string' },
  to: { type: 'string' },
  method: { type: 'string' },
  path: { type: 'string' },
  header: { type: 'string', short: 'H', multiple: true },
  'source-ip': { type: 'string' },
  json: { type: 'boolean' },
} as const;

export async function runExplain(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values } = parseArgs({ args: argv, strict: true, options: EXPLAIN_OPTIONS });
  if (values.help) {
    process.stdout.write(EXPLAIN_USAGE);
    return 0;
  }
  const paths = requiredConfigPaths('explain', values.config, env);
  const gateway = gatewayFrom(values.gateway, env);
  if (!gateway) throw new UsageError('explain: --gateway is required');
  const { trustDomain, input } = explainInput(values);
  // The mesh's trust domain is the caller's: principals are matched within it.
  const clusterDomain = clusterDomainFrom(values['cluster-domain'], env);
  const { snapshot, report } = await loadOnce({
    paths,
    gateway,
    trustDomain,
    clusterDomain,
    factories: FILTER_ORDER,
  });
  if (!snapshot) throw new Error('no configuration was loaded');
  if (report.rejected.length > 0)
    process.stderr.write(
      `node-waypoint: explain: ${report.rejected.length} resource(s) rejected, not in force (see node-waypoint validate)\n`,
    );
  if (!snapshot.gateway.found)
    process.stderr.write(
      `node-waypoint: explain: gateway ${gateway.namespace}/${gateway.name} not found in the configuration\n`,
    );
  return explainOne(snapshot, input, values.json === true);
}

/** The request to explain, from --from, --to, --method, --path, -H and --source-ip. */
function explainInput(values: {
  from?: string | undefined;
  to?: string | undefined;
  method?: string | undefined;
  path?: string | undefined;
  header?: string[] | undefined;
  'source-ip'?: string | undefined;
}): { trustDomain: string; input: ExplainInput } {
  if (!values.from) throw new UsageError('explain: --from is required');
  if (!values.to) throw new UsageError('explain: --to is required');
  const peer = parseSpiffeId(values.from);
  if (!peer)
    throw new UsageError(`--from: expected spiffe://TD/ns/NS/sa/SA, got ${JSON.stringify(values.from)}`);
  const headers: Record<string, string> = {};
  for (const h of values.header ?? []) {
    const i = h.indexOf(':');
    if (i <= 0) throw new UsageError(`-H: expected NAME:VALUE, got ${JSON.stringify(h)}`);
    headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
  }
  const input = {
    from: values.from,
    to: values.to,
    ...(values.method !== undefined ? { method: values.method } : {}),
    ...(values.path !== undefined ? { path: values.path } : {}),
    headers,
    ...(values['source-ip'] !== undefined ? { sourceIp: values['source-ip'] } : {}),
  };
  return { trustDomain: peer.trustDomain, input };
}

/** Prints the explanation; the exit status says the verdict (0 allowed, 3 denied, 1 no such destination). */
async function explainOne(snapshot: Snapshot, input: ExplainInput, json: boolean): Promise<number> {
  try {
    const result = await explainRequest(snapshot, FILTER_ORDER, input, silentLogger);
    process.stdout.write(json ? `${JSON.stringify(result, null, 2)}\n` : formatExplain(result));
    return result.allowed ? 0 : EXIT_DENIED;
  } catch (err) {
    if (err instanceof ExplainInputError) throw new UsageError(err.message);
    if (err instanceof ExplainDestinationError) {
      process.stderr.write(`node-waypoint: explain: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
