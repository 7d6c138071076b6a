// A small cluster for the controller's slice tests: two waypoints, bound and unbound Services,
// a consumer route with a cross-namespace backend, policies by each kind of target.
import type { KubeDocument } from '../../src/controller/slice-source.ts';

export const GW = 'gateway.networking.k8s.io/v1';
export const KINDS = ['Namespace', 'Service', 'Pod', 'EndpointSlice', 'Gateway', 'GatewayClass', 'HTTPRoute'];

export function doc(
  apiVersion: string,
  kind: string,
  ns: string | undefined,
  name: string,
  rest: object = {},
): KubeDocument {
  const { labels, annotations, ...body } = rest as { labels?: object; annotations?: object };
  return {
    apiVersion,
    kind,
    metadata: { name, ...(ns ? { namespace: ns } : {}), resourceVersion: '1', labels, annotations },
    ...body,
  };
}
export const ns = (name: string, labels: Record<string, string> = {}) =>
  doc('v1', 'Namespace', undefined, name, { labels });
let vip = 0;
export const svc = (n: string, name: string, labels: Record<string, string> = {}) =>
  doc('v1', 'Service', n, name, {
    labels,
    spec: { clusterIP: `10.96.0.${++vip}`, selector: { app: name }, ports: [{ port: 80 }] },
  });
export const pod = (n: string, name: string, app: string, ip: string) =>
  doc('v1', 'Pod', n, name, { labels: { app }, spec: { serviceAccountName: app }, status: { podIP: ip } });
export const slice = (n: string, service: string, pods: string[]) =>
  doc('discovery.k8s.io/v1', 'EndpointSlice', n, `${service}-abc`, {
    labels: { 'kubernetes.io/service-name': service },
    addressType: 'IPv4',
    endpoints: pods.map((p) => ({
      addresses: ['10.0.0.1'],
      targetRef: { kind: 'Pod', name: p, namespace: n },
    })),
  });
export const route = (
  n: string,
  name: string,
  parent: string,
  backend: { name: string; namespace?: string },
) =>
  doc(GW, 'HTTPRoute', n, name, {
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: parent }],
      rules: [{ backendRefs: [{ ...backend, port: 80 }] }],
    },
  });
export const policy = (n: string, name: string, targetRef: object) =>
  doc('security.istio.io/v1', 'AuthorizationPolicy', n, name, {
    spec: { targetRefs: [targetRef], action: 'DENY' },
  });

export function fixture(): KubeDocument[] {
  return [
    doc(GW, 'GatewayClass', undefined, 'istio-waypoint', {
      spec: { controllerName: 'istio.io/mesh-controller' },
    }),
    doc(GW, 'GatewayClass', undefined, 'custom', { spec: { controllerName: 'istio.io/mesh-controller' } }),
    doc(GW, 'GatewayClass', undefined, 'ingress', {
      spec: { controllerName: 'istio.io/gateway-controller' },
    }),
    doc(GW, 'Gateway', 'shop', 'waypoint', {
      spec: {
        gatewayClassName: 'istio-waypoint',
        listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
      },
    }),
    doc(GW, 'Gateway', 'other', 'wp2', {
      spec: { gatewayClassName: 'custom' },
      annotations: { 'gateway.istio.io/service-account': 'wp2-sa' },
    }),
    doc(GW, 'Gateway', 'other', 'ingress', { spec: { gatewayClassName: 'ingress' } }),
    ns('shop', { 'istio.io/use-waypoint': 'waypoint' }),
    ns('bank'),
    ns('other'),
    ns('istio-system'),
    svc('shop', 'reviews'),
    slice('shop', 'reviews', ['r1']),
    pod('shop', 'r1', 'reviews', '10.0.0.1'),
    pod('shop', 'stray', 'stray', '10.0.0.9'),
    svc('bank', 'ledger'),
    slice('bank', 'ledger', ['l1']),
    pod('bank', 'l1', 'ledger', '10.0.1.1'),
    svc('bank', 'vault', { 'istio.io/use-waypoint': 'waypoint', 'istio.io/use-waypoint-namespace': 'shop' }),
    slice('bank', 'vault', []),
    svc('bank', 'unbound'),
    pod('bank', 'u1', 'unbound', '10.0.1.9'),
    route('shop', 'reviews-route', 'reviews', { name: 'ledger', namespace: 'bank' }),
    route('bank', 'ledger-route', 'ledger', { name: 'unbound' }),
    doc('gateway.networking.k8s.io/v1beta1', 'ReferenceGrant', 'bank', 'from-shop', { spec: {} }),
    policy('shop', 'on-gateway', { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint' }),
    policy('istio-system', 'on-class', {
      group: 'gateway.networking.k8s.io',
      kind: 'GatewayClass',
      name: 'istio-waypoint',
    }),
    policy('shop', 'on-class-not-root', {
      group: 'gateway.networking.k8s.io',
      kind: 'GatewayClass',
      name: 'istio-waypoint',
    }),
    policy('bank', 'on-unbound', { kind: 'Service', name: 'unbound' }),
    policy('bank', 'on-vault', { kind: 'Service', name: 'vault' }),
    doc('networking.istio.io/v1', 'VirtualService', 'shop', 'reviews-vs', { spec: { hosts: ['reviews'] } }),
    doc('networking.istio.io/v1', 'DestinationRule', 'bank', 'ledger-dr', {
      spec: { host: 'ledger.bank.svc.cluster.local' },
    }),
    doc('networking.istio.io/v1', 'VirtualService', 'bank', 'unbound-vs', { spec: { hosts: ['unbound'] } }),
    doc('v1', 'ConfigMap', 'istio-system', 'istio', { data: { mesh: 'rootNamespace: istio-system' } }),
  ];
}
