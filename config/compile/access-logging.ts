// The Telemetry API's accessLogging as it applies to this waypoint (istio/api telemetry.proto): a
// resource in the root namespace (istio-system) without selector or targetRefs is the mesh default,
// one in the waypoint's namespace the namespace's, one selecting the waypoint (targetRefs to its
// Gateway, or a selector on gateway.networking.k8s.io/gateway-name) the waypoint's, and targetRefs
// to a Service that Service's traffic. The most specific level decides: on (every request logged)
// or off (none); without any, the --access-log mode does. Provider `envoy` (stdout) is the one the
// waypoint writes; others and `filter` expressions are warned about and treated as `envoy`.
import { FrozenMap } from '../freeze.ts';
import type { Telemetry, TelemetryAccessLogging } from '../kinds/telemetry.ts';
import type { ConfigMessage, ObjectRef } from '../model.ts';
import { describe, type Resource, resourcesOf } from '../resource.ts';
import { ROOT_NAMESPACE } from './policy-target.ts';

export interface AccessLogChoice {
  readonly enabled: boolean;
  readonly providers: readonly string[];
  /** `Telemetry NS/NAME` that decided, for /config_dump. */
  readonly source: string;
}

export interface AccessLogging {
  /** For the waypoint's traffic (undefined: no Telemetry decides, the --access-log mode does). */
  readonly waypoint: AccessLogChoice | undefined;
  /** Per Service hostname, from Telemetry targetRefs to a Service. */
  readonly services: ReadonlyMap<string, AccessLogChoice>;
}

type Level = 0 | 1 | 2;

function choiceOf(
  t: Resource<Telemetry>,
  entries: readonly TelemetryAccessLogging[],
  messages: ConfigMessage[],
): AccessLogChoice {
  const warn = (field: string, text: string): void => {
    messages.push({
      severity: 'warning',
      message: `${t.origin}: ${describe(t)}: ${field}: ${text}`,
      origin: t.origin,
      kind: 'Telemetry',
      namespace: t.namespace,
      name: t.name,
      field,
    });
  };
  const providers = new Set<string>();
  entries.forEach((e, i) => {
    if (e.filter)
      warn(
        `spec.accessLogging[${i}].filter`,
        'filter expressions are not evaluated: every request is logged',
      );
    for (const p of e.providers ?? [{ name: 'envoy' }]) {
      if (p.name !== 'envoy')
        warn(
          `spec.accessLogging[${i}].providers`,
          `provider ${p.name} is written as the built-in envoy (stdout)`,
        );
      if (!e.disabled) providers.add(p.name);
    }
  });
  return { enabled: entries.some((e) => !e.disabled), providers: [...providers], source: describe(t) };
}

/** Undefined when no Telemetry resource has accessLogging. */
export function compileAccessLogging(
  resources: readonly Resource[],
  gateway: ObjectRef,
  clusterDomain: string,
  messages: ConfigMessage[],
): AccessLogging | undefined {
  const telemetries = resourcesOf<Telemetry>(resources, 'telemetry.istio.io', 'Telemetry')
    .filter((t) => (t.spec.spec?.accessLogging?.length ?? 0) > 0)
    .sort((a, b) => describe(a).localeCompare(describe(b)));
  if (telemetries.length === 0) return undefined;
  let best: { level: Level; choice: AccessLogChoice } | undefined;
  const services = new Map<string, AccessLogChoice>();
  for (const t of telemetries) {
    const spec = t.spec.spec!;
    const choice = choiceOf(t, spec.accessLogging ?? [], messages);
    const refs = [...(spec.targetRefs ?? []), ...(spec.targetRef ? [spec.targetRef] : [])];
    let level: Level | undefined;
    if (refs.length > 0) {
      for (const r of refs) {
        const ns = r.namespace ?? t.namespace;
        if (r.kind === 'Service' && !services.has(`${r.name}.${ns}.svc.${clusterDomain}`))
          services.set(`${r.name}.${ns}.svc.${clusterDomain}`, choice);
        if (r.kind === 'Gateway' && r.name === gateway.name && ns === gateway.namespace) level = 2;
      }
    } else if (spec.selector) {
      const l = spec.selector.matchLabels ?? {};
      const named = l['gateway.networking.k8s.io/gateway-name'] ?? l['istio.io/gateway-name'];
      if (t.namespace === gateway.namespace && named === gateway.name) level = 2;
    } else if (t.namespace === ROOT_NAMESPACE) level = 0;
    else if (t.namespace === gateway.namespace) level = 1;
    if (level !== undefined && (!best || level > best.level)) best = { level, choice };
  }
  return { waypoint: best?.choice, services: new FrozenMap(services) };
}
