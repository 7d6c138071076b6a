// Where a policy's targetRef attaches at this waypoint (Istio's policy attachment for waypoints):
// its Gateway, the istio-waypoint GatewayClass from the root namespace (every waypoint), or a
// Service or ServiceEntry of the policy's own namespace. Shared by AuthorizationPolicy and
// RequestAuthentication.
import { WAYPOINT_GATEWAY_CLASS } from './binding.ts';

/** Istio's root namespace: where mesh-wide policies (GatewayClass targets, Telemetry defaults) live. */
export const ROOT_NAMESPACE = 'istio-system';

const GATEWAY_GROUP = 'gateway.networking.k8s.io';

export type PolicyTarget = { readonly kind: 'waypoint' } | { readonly kind: 'service'; readonly key: string };

export interface TargetRef {
  readonly group?: string | null;
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string | null;
}

/**
 * The target of one targetRef of a policy in `namespace`. No target and no `why`: it names another
 * Gateway or GatewayClass (not ours, nothing to say); a `why` says why it can never attach.
 */
export function policyTarget(
  namespace: string,
  ref: TargetRef,
  gateway: { readonly namespace: string; readonly name: string },
): { target?: PolicyTarget; why?: string } {
  const group = ref.group ?? '';
  if (ref.namespace && ref.namespace !== namespace)
    return { why: 'cross-namespace targetRef is not supported' };
  if (ref.kind === 'Gateway' && group === GATEWAY_GROUP)
    return namespace === gateway.namespace && ref.name === gateway.name
      ? { target: { kind: 'waypoint' } }
      : {};
  if (ref.kind === 'GatewayClass' && group === GATEWAY_GROUP) {
    if (ref.name !== WAYPOINT_GATEWAY_CLASS) return {};
    if (namespace !== ROOT_NAMESPACE)
      return { why: `GatewayClass targets only apply from the root namespace ${ROOT_NAMESPACE}` };
    return { target: { kind: 'waypoint' } };
  }
  // A bound ServiceEntry is a Service-like destination keyed the same way (namespace/name).
  if (
    (ref.kind === 'Service' && (group === '' || group === 'core')) ||
    (ref.kind === 'ServiceEntry' && group === 'networking.istio.io')
  )
    return { target: { kind: 'service', key: `${namespace}/${ref.name}` } };
  return { why: `target kind ${group ? `${group}/` : ''}${ref.kind} does not attach to a waypoint` };
}
