// `node-waypoint validate`: loads the configuration as `run` would and prints every problem:
// rejected resources (errors, field by field), the snapshot's warnings (policies not enforced at the
// waypoint, invalid or unknown rule parts, targets that attach to nothing) and validate's own check
// for HTTP-only policy fields on tcp/tls Service ports. Exit 0 without errors (warnings allowed), 1
// when anything was rejected, 2 on usage errors.
import { parseArgs } from 'node:util';
import { readManifests } from '../../config/load.ts';
import type { ConfigMessage, ObjectRef, Snapshot } from '../../config/model.ts';
import type { UpdateReport } from '../../config/store.ts';
import { lintAuthz } from '../../filters/authz/lint.ts';
import { FILTER_ORDER } from '../../filters/index.ts';
import { loadOnce } from '../explain/load-once.ts';
import { UsageError } from './flags.ts';
import {
  clusterDomainFrom,
  gatewayFrom,
  requiredConfigPaths,
  SHARED_FLAGS,
  trustDomainFrom,
} from './shared-flags.ts';
import { VALIDATE_USAGE } from './usage.ts';

const WAYPOINT_CLASS = 'istio-waypoint';

export const VALIDATE_OPTIONS = {
  config: SHARED_FLAGS.config,
  gateway: SHARED_FLAGS.gateway,
  'trust-domain': SHARED_FLAGS['trust-domain'],
  'cluster-domain': SHARED_FLAGS['cluster-domain'],
  help: SHARED_FLAGS.help,
} as const;

export async function runValidate(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values } = parseArgs({ args: argv, strict: true, options: VALIDATE_OPTIONS });
  if (values.help) {
    process.stdout.write(VALIDATE_USAGE);
    return 0;
  }
  const paths = requiredConfigPaths('validate', values.config, env);
  const out: string[] = [];
  const named = gatewayFrom(values.gateway, env);
  const gateway = named ?? (await gatewayOfManifests(paths, out));
  const { snapshot, report } = await loadOnce({
    paths,
    gateway,
    trustDomain: trustDomainFrom(values['trust-domain'], env),
    clusterDomain: clusterDomainFrom(values['cluster-domain'], env),
    factories: FILTER_ORDER,
    extraCompilers: { 'authz-lint': lintAuthz },
  });
  if (snapshot && !snapshot.gateway.found && named)
    out.push(
      `warning: gateway ${gateway.namespace}/${gateway.name} is not in the configuration: nothing would be served`,
    );
  const errors = reportLines(out, gateway, snapshot, report);
  process.stdout.write(`${out.join('\n')}\n`);
  return errors > 0 ? 1 : 0;
}

/** Without --gateway: the one waypoint Gateway of the manifests (a note or warning goes to `out`). */
async function gatewayOfManifests(paths: readonly string[], out: string[]): Promise<ObjectRef> {
  const found = await waypointGateways(paths);
  if (found.length > 1)
    throw new UsageError(
      `validate: several waypoint Gateways (${found.map((g) => `${g.namespace}/${g.name}`).join(', ')}): choose one with --gateway`,
    );
  const gateway = found[0] ?? { namespace: 'istio-system', name: 'waypoint' };
  if (found.length === 0)
    out.push(
      `warning: no Gateway with gatewayClassName ${WAYPOINT_CLASS} in the configuration: nothing would be served`,
    );
  else out.push(`note: validating for gateway ${gateway.namespace}/${gateway.name}`);
  return gateway;
}

/** Appends every problem and the totals to `out`; returns the number of errors. */
function reportLines(
  out: string[],
  gateway: ObjectRef,
  snapshot: Snapshot | undefined,
  report: UpdateReport,
): number {
  const messages: ConfigMessage[] = [...report.rejected, ...report.warnings, ...(snapshot?.messages ?? [])];
  const errors =
    report.rejected.length + (snapshot?.messages ?? []).filter((m) => m.severity === 'error').length;
  let warnings = out.filter((l) => l.startsWith('warning:')).length;
  for (const m of report.rejected) out.push(`error: rejected: ${m.message}`);
  for (const m of messages.slice(report.rejected.length)) {
    out.push(`${m.severity}: ${m.message}`);
    if (m.severity === 'warning') warnings++;
  }
  for (const [kind, n] of Object.entries(report.ignoredKinds))
    out.push(
      `note: ${n} document${n === 1 ? '' : 's'} of kind ${kind} ignored (not a kind the waypoint reads)`,
    );
  if (snapshot)
    out.push(
      `${report.applied} resources in force; ${snapshot.services.size} Service ports and ${snapshot.workloads.size} pods bound to ${gateway.namespace}/${gateway.name}`,
    );
  out.push(`${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}`);
  return errors;
}

/** The Gateways of class istio-waypoint in the manifests, to validate for when --gateway is not given. */
async function waypointGateways(paths: readonly string[]): Promise<ObjectRef[]> {
  const { documents } = await readManifests(paths);
  const out: ObjectRef[] = [];
  for (const d of documents) {
    const v = d.value as {
      kind?: unknown;
      metadata?: { name?: unknown; namespace?: unknown };
      spec?: { gatewayClassName?: unknown };
    } | null;
    if (v?.kind !== 'Gateway' || v.spec?.gatewayClassName !== WAYPOINT_CLASS) continue;
    const name = v.metadata?.name;
    const namespace = v.metadata?.namespace ?? 'default';
    if (typeof name === 'string' && typeof namespace === 'string') out.push({ namespace, name });
  }
  return out;
}
