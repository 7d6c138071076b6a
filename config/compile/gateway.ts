// Which Gateway we are, and what it accepts: its traffic type (`istio.io/waypoint-for`), its HBONE
// listener and that listener's allowedRoutes. Follows istiod's WaypointsCollection and
// makeAllowedRoutes (istio/istio pilot/pkg/serviceregistry/kube/controller/ambient/waypoints.go)
// and the mesh controller's listener rule (pilot/pkg/config/kube/gateway/conversion.go).
import type { LabelSelector } from '../kinds/common.ts';
import type { Gateway, Listener } from '../kinds/gateway.ts';
import type { ConfigMessage, GatewayStatus, TrafficType } from '../model.ts';
import type { Resource } from '../resource.ts';
import { WAYPOINT_GATEWAY_CLASS as WAYPOINT_CLASS } from './binding.ts';
import type { Inventory } from './inventory.ts';
import { label, selectorMatches } from './labels.ts';
import { isTerminal, podConditions } from './pods.ts';

export const WAYPOINT_FOR_LABEL = 'istio.io/waypoint-for';
export const HBONE_PORT = 15008;
/** Istio's label on a waypoint's pods (the Gateway API one; older releases used istio.io's). */
export const GATEWAY_NAME_LABELS = ['gateway.networking.k8s.io/gateway-name', 'istio.io/gateway-name'];
/** Istio's listener condition message, word for word, so users can search for it. */
export const HBONE_LISTENER_MESSAGE = 'Expected a single listener on port 15008 with protocol "HBONE"';

const TRAFFIC_TYPES: readonly TrafficType[] = ['service', 'workload', 'all', 'none'];

export interface WaypointGateway {
  readonly status: GatewayStatus;
  /** Found, has its HBONE listener, and takes some traffic. */
  readonly serving: boolean;
  /** Whether the HBONE listener's allowedRoutes lets objects of namespace use this waypoint. */
  admits(namespace: string): boolean;
  /** allowedRoutes in words, for messages: `Same`, `All`, `Selector`. */
  readonly allowedRoutes: string;
}

export function resolveGateway(
  inv: Inventory,
  ref: { readonly namespace: string; readonly name: string },
  messages: ConfigMessage[],
): WaypointGateway {
  const gw = inv.gateway(ref.namespace, ref.name);
  const replicas = waypointReplicas(inv, ref);
  if (!gw) {
    const status: GatewayStatus = {
      ref,
      found: false,
      gatewayClassName: undefined,
      trafficType: 'service',
      conditions: [`Gateway ${ref.namespace}/${ref.name} not found in the configuration; serving nothing`],
      ...replicas,
    };
    return notServing(status);
  }
  const conditions: string[] = [];
  const className = gw.spec.spec.gatewayClassName;
  if (className !== WAYPOINT_CLASS) {
    const text = `spec.gatewayClassName is "${className}", not "${WAYPOINT_CLASS}"; using it as a waypoint anyway`;
    messages.push(gatewayWarning(gw, 'spec.gatewayClassName', text));
  }
  const trafficType = resolveTrafficType(gw, inv, conditions, messages);
  const hbone = hboneListener(gw, conditions, messages);
  const status: GatewayStatus = {
    ref,
    found: true,
    gatewayClassName: className,
    trafficType,
    conditions,
    ...replicas,
  };
  if (!hbone) {
    conditions.push(`${HBONE_LISTENER_MESSAGE}; none found, serving nothing`);
    return notServing(status);
  }
  if (trafficType === 'none') {
    conditions.push(`${WAYPOINT_FOR_LABEL} is "none"; serving nothing`);
    return notServing(status);
  }
  const { admits, text } = allowedRoutes(gw, hbone, inv, messages);
  return { status, serving: true, admits, allowedRoutes: text };
}

function notServing(status: GatewayStatus): WaypointGateway {
  return { status, serving: false, admits: () => false, allowedRoutes: 'none' };
}

/** The HBONE listener (15008/HBONE); every other listener is ignored with a condition and a warning. */
function hboneListener(
  gw: Resource<Gateway>,
  conditions: string[],
  messages: ConfigMessage[],
): Listener | undefined {
  const listeners = gw.spec.spec.listeners;
  const hbone = listeners.find((l) => l.port === HBONE_PORT && l.protocol === 'HBONE');
  for (const l of listeners) {
    if (l === hbone) continue;
    const text = `listener "${l.name}" (${l.port}/${l.protocol}) ignored: ${HBONE_LISTENER_MESSAGE}`;
    conditions.push(text);
    messages.push(gatewayWarning(gw, 'spec.listeners', text));
  }
  return hbone;
}

/**
 * How many replicas of this waypoint are live: Ready, non-terminal Pods in the Gateway's namespace
 * carrying its name in a gateway-name label. With the Kubernetes source this follows the HPA; with
 * YAML, the file. None found: 1, flagged unknown, so per-waypoint limits stay per replica.
 */
export function waypointReplicas(
  inv: Inventory,
  ref: { readonly namespace: string; readonly name: string },
): { replicas: number; replicasKnown: boolean } {
  let live = 0;
  for (const pod of inv.podsIn(ref.namespace)) {
    const labels = pod.spec.metadata.labels;
    if (!GATEWAY_NAME_LABELS.some((l) => label(labels, l) === ref.name)) continue;
    if (isTerminal(pod) || !podConditions(pod).ready) continue;
    live++;
  }
  return live > 0 ? { replicas: live, replicasKnown: true } : { replicas: 1, replicasKnown: false };
}

/** Gateway label, else GatewayClass label, else `service`; an unknown value warns and means `service`. */
function resolveTrafficType(
  gw: Resource<Gateway>,
  inv: Inventory,
  conditions: string[],
  messages: ConfigMessage[],
): TrafficType {
  const className = gw.spec.spec.gatewayClassName;
  const fromGateway = label(gw.spec.metadata.labels, WAYPOINT_FOR_LABEL);
  const cls = inv.gatewayClass(className);
  const fromClass = cls ? label(cls.spec.metadata.labels, WAYPOINT_FOR_LABEL) : undefined;
  const [value, source] =
    fromGateway !== undefined
      ? [fromGateway, 'Gateway label']
      : fromClass !== undefined
        ? [fromClass, `GatewayClass ${className} label`]
        : ['service', 'default'];
  if ((TRAFFIC_TYPES as readonly string[]).includes(value)) {
    conditions.push(`waypoint-for ${value} (${source})`);
    return value as TrafficType;
  }
  const text = `${WAYPOINT_FOR_LABEL} "${value}" (${source}) is not one of ${TRAFFIC_TYPES.join(', ')}; treating it as service`;
  conditions.push(text);
  messages.push(gatewayWarning(gw, `metadata.labels["${WAYPOINT_FOR_LABEL}"]`, text));
  return 'service';
}

function allowedRoutes(
  gw: Resource<Gateway>,
  listener: Listener,
  inv: Inventory,
  messages: ConfigMessage[],
): { admits: (namespace: string) => boolean; text: string } {
  const from = listener.allowedRoutes?.namespaces?.from ?? 'Same';
  if (from === 'All') return { admits: () => true, text: 'All' };
  if (from === 'Same') return { admits: (ns) => ns === gw.namespace, text: 'Same' };
  const selector: LabelSelector | null | undefined = listener.allowedRoutes?.namespaces?.selector;
  if (!selector) {
    // LabelSelectorAsSelector(nil) is labels.Nothing() in istiod: no namespace is admitted.
    messages.push(
      gatewayWarning(
        gw,
        'spec.listeners.allowedRoutes.namespaces.selector',
        `listener "${listener.name}" has allowedRoutes from Selector but no selector; no namespace is admitted`,
      ),
    );
    return { admits: () => false, text: 'Selector (none)' };
  }
  return { admits: (ns) => selectorMatches(selector, inv.namespaceLabels(ns)), text: 'Selector' };
}

function gatewayWarning(gw: Resource<Gateway>, field: string, text: string): ConfigMessage {
  return {
    severity: 'warning',
    message: `${gw.origin}: Gateway ${gw.namespace}/${gw.name}: ${text}`,
    origin: gw.origin,
    kind: 'Gateway',
    namespace: gw.namespace,
    name: gw.name,
    field,
  };
}
