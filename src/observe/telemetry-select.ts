// Which Telemetry tracing settings apply to this waypoint, as Istio merges them: the root
// namespace's resource without selector (mesh default), then the waypoint namespace's one without
// selector, then one selecting the waypoint (targetRefs to its Gateway, or a selector matching
// its gateway-name label); each level's set fields override the level before. Compiled into the
// snapshot (filters.telemetry) so a Telemetry change takes effect with the configuration.
import type { FilterCompiler } from '../../config/compile.ts';
import type { Telemetry, TelemetryTracing } from '../../config/kinds/telemetry.ts';
import { telemetryWarnings } from '../../config/kinds/telemetry.ts';
import type { ConfigMessage, ObjectRef } from '../../config/model.ts';
import { describe, type Resource } from '../../config/resource.ts';
import type { CustomTag } from './tracing.ts';

export const TELEMETRY = 'telemetry';

/** The merged tracing settings; undefined fields were set by no Telemetry. */
export interface TracingPolicy {
  readonly provider?: string;
  readonly samplingPercent?: number;
  readonly disableSpanReporting?: boolean;
  readonly customTags?: Readonly<Record<string, CustomTag>>;
}

function selectsWaypoint(t: Telemetry, gateway: ObjectRef): boolean {
  const refs = [...(t.spec?.targetRefs ?? []), ...(t.spec?.targetRef ? [t.spec.targetRef] : [])];
  if (refs.some((r) => r.kind === 'Gateway' && r.name === gateway.name)) return true;
  const labels = t.spec?.selector?.matchLabels;
  if (!labels) return false;
  const ours: Record<string, string> = {
    'gateway.networking.k8s.io/gateway-name': gateway.name,
    'istio.io/gateway-name': gateway.name,
  };
  return Object.entries(labels).every(([k, v]) => ours[k] === v);
}

function customTagsOf(spec: TelemetryTracing['customTags']): Record<string, CustomTag> | undefined {
  if (!spec) return undefined;
  const out: Record<string, CustomTag> = {};
  for (const [name, t] of Object.entries(spec)) {
    if (t.literal) out[name] = { literal: t.literal.value };
    else if (t.environment)
      out[name] = { environment: t.environment.name, defaultValue: t.environment.defaultValue ?? undefined };
    else if (t.header)
      out[name] = { header: t.header.name, defaultValue: t.header.defaultValue ?? undefined };
  }
  return out;
}

function layer(into: TracingPolicy, t: Telemetry): TracingPolicy {
  const tr = t.spec?.tracing?.find((x) => x.match?.mode !== 'CLIENT');
  if (!tr) return into;
  return {
    provider: tr.providers?.[0]?.name ?? into.provider,
    samplingPercent: tr.randomSamplingPercentage ?? into.samplingPercent,
    disableSpanReporting: tr.disableSpanReporting ?? into.disableSpanReporting,
    customTags: customTagsOf(tr.customTags) ?? into.customTags,
  };
}

/** The merged policy for `gateway` from the Telemetry resources in force. */
export function selectTracing(
  resources: readonly Resource[],
  gateway: ObjectRef,
  rootNamespace: string,
): TracingPolicy {
  const telemetries = resources.filter((r) => r.kind === 'Telemetry') as Resource<Telemetry>[];
  const byName = (a: Resource, b: Resource) => a.name.localeCompare(b.name);
  const levels = [
    telemetries.filter((r) => r.namespace === rootNamespace && !scoped(r.spec)),
    telemetries.filter(
      (r) => r.namespace === gateway.namespace && r.namespace !== rootNamespace && !scoped(r.spec),
    ),
    telemetries.filter((r) => r.namespace === gateway.namespace && selectsWaypoint(r.spec, gateway)),
  ];
  let policy: TracingPolicy = {};
  // Istio takes the oldest of several at one level; name order keeps it deterministic here.
  for (const level of levels) {
    const first = [...level].sort(byName)[0];
    if (first) policy = layer(policy, first.spec);
  }
  return policy;
}

const scoped = (t: Telemetry): boolean =>
  Boolean(t.spec?.selector || t.spec?.targetRef || t.spec?.targetRefs?.length);

/** The snapshot compiler: the policy, and a warning per Telemetry field not enforced. */
export function telemetryCompiler(gateway: ObjectRef, rootNamespace: string): FilterCompiler {
  return (resources) => {
    const messages: ConfigMessage[] = [];
    for (const r of resources) {
      if (r.kind !== 'Telemetry') continue;
      for (const w of telemetryWarnings(r.spec as Telemetry))
        messages.push({
          severity: 'warning',
          message: `${describe(r)}: ${w}`,
          kind: r.kind,
          namespace: r.namespace,
          name: r.name,
          origin: r.origin,
        });
    }
    return { config: selectTracing(resources, gateway, rootNamespace), messages };
  };
}
