// Which waypoint an object asks for: its own `istio.io/use-waypoint` label, else its namespace's.
// Mirrors istiod's fetchWaypointForTarget/getUseWaypoint (istio/istio
// pilot/pkg/serviceregistry/kube/controller/ambient/waypoints.go): the object's label wins outright
// (no fallback to the namespace even if that waypoint refuses it), and `none` opts out.
import type { ObjectRef } from '../model.ts';
import { type Labels, label } from './labels.ts';

export const USE_WAYPOINT_LABEL = 'istio.io/use-waypoint';
export const USE_WAYPOINT_NAMESPACE_LABEL = 'istio.io/use-waypoint-namespace';
/** On the Services istiod creates for waypoints: a waypoint never uses a waypoint. */
export const MANAGED_LABEL = 'gateway.istio.io/managed';
export const MESH_CONTROLLER_MANAGED = 'istio.io-mesh-controller';

export interface WaypointRequest {
  readonly ref: ObjectRef;
  /** Where the label was found, for messages. */
  readonly via: 'object' | 'namespace';
}

/** The waypoint requested, or undefined when none is (no label, or `none`). */
export function requestedWaypoint(
  objectLabels: Labels | null | undefined,
  namespace: string,
  namespaceLabels: Labels,
): WaypointRequest | undefined {
  const own = fromLabels(objectLabels, namespace);
  if (own !== 'absent') return own === 'none' ? undefined : { ref: own, via: 'object' };
  const inherited = fromLabels(namespaceLabels, namespace);
  if (inherited === 'absent' || inherited === 'none') return undefined;
  return { ref: inherited, via: 'namespace' };
}

function fromLabels(
  labels: Labels | null | undefined,
  defaultNamespace: string,
): ObjectRef | 'none' | 'absent' {
  const name = label(labels, USE_WAYPOINT_LABEL);
  if (name === undefined) return 'absent';
  // Istio reserves the word: a waypoint named "none" cannot be used.
  if (name === 'none') return 'none';
  return { namespace: label(labels, USE_WAYPOINT_NAMESPACE_LABEL) ?? defaultNamespace, name };
}
