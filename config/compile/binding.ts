// The one rule that decides which waypoint an object is bound to, used both by the file source's
// compile (config/compile.ts) and by the controller when it picks what each waypoint's slice holds
// (src/controller/slicer.ts). Services and ServiceEntries bind by istio.io/use-waypoint on
// themselves or their namespace, except a waypoint's own Service; Pods (workload traffic) likewise.
import { type Labels, label } from './labels.ts';
import {
  MANAGED_LABEL,
  MESH_CONTROLLER_MANAGED,
  requestedWaypoint,
  type WaypointRequest,
} from './use-waypoint.ts';

export const WAYPOINT_GATEWAY_CLASS = 'istio-waypoint';
export const MESH_CONTROLLER_NAME = 'istio.io/mesh-controller';

/** The waypoint a Service or ServiceEntry asks for; a waypoint's own Service never uses one. */
export function serviceWaypoint(
  labels: Labels | null | undefined,
  namespace: string,
  namespaceLabels: Labels,
): WaypointRequest | undefined {
  if (label(labels, MANAGED_LABEL) === MESH_CONTROLLER_MANAGED) return undefined;
  return requestedWaypoint(labels, namespace, namespaceLabels);
}

/** The waypoint a Pod asks for (workload-addressed traffic). */
export function workloadWaypoint(
  labels: Labels | null | undefined,
  namespace: string,
  namespaceLabels: Labels,
): WaypointRequest | undefined {
  return requestedWaypoint(labels, namespace, namespaceLabels);
}

/** Whether a request names exactly this Gateway. */
export function requestsGateway(
  req: WaypointRequest | undefined,
  gateway: { readonly namespace: string; readonly name: string },
): req is WaypointRequest {
  return req !== undefined && req.ref.namespace === gateway.namespace && req.ref.name === gateway.name;
}

/** A waypoint Gateway: class istio-waypoint, or a class whose controller is Istio's mesh controller. */
export function isWaypointClass(className: string | undefined, controllerName: string | undefined): boolean {
  return className === WAYPOINT_GATEWAY_CLASS || controllerName === MESH_CONTROLLER_NAME;
}
