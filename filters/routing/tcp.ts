// Where an opaque TCP tunnel goes: TCPRoute (or VirtualService tcp) weighted backends of the
// dialled Service port, else the port's own cluster. Chosen once per connection.
import type { TunnelInfo } from '../../src/pipeline/context.ts';
import type { TcpRoute } from '../../src/pipeline/filter.ts';
import type { Cluster } from '../../src/upstream/cluster.ts';
import type { RoutingConfig } from './model.ts';
import { portKey } from './model.ts';
import { pickBackend } from './router.ts';
import { ROUTING } from './select.ts';

export type TcpTarget =
  | { readonly kind: 'cluster'; readonly cluster: Cluster; readonly routeName: string | undefined }
  | { readonly kind: 'invalid'; readonly why: string }
  /** Routing has nothing to say: the tunnel goes to its binding. */
  | { readonly kind: 'binding' };

export function tcpTarget(tunnel: TunnelInfo, random: () => number = Math.random): TcpTarget {
  const config = tunnel.snapshot.filters[ROUTING] as RoutingConfig | undefined;
  const b = tunnel.binding;
  if (!config || b.kind !== 'service') return { kind: 'binding' };
  const port = config.ports.get(portKey(b.service.namespace, b.service.name, b.port));
  if (!port) return { kind: 'binding' };
  if (!port.tcp) return { kind: 'cluster', cluster: port.defaultCluster, routeName: undefined };
  const i = pickBackend(port.tcp, random);
  const backend = i === undefined ? undefined : port.tcp.backends[i];
  if (!backend) return { kind: 'invalid', why: `${port.tcp.ref.display} has no backend with weight above 0` };
  if (!backend.cluster) return { kind: 'invalid', why: backend.invalid ?? 'backend does not resolve' };
  return { kind: 'cluster', cluster: backend.cluster, routeName: port.tcp.ref.display };
}

/** The TCP routing phase (Filter.onTcpRoute): a cluster, why none, or undefined for the binding. */
export function tcpRoute(tunnel: TunnelInfo): TcpRoute | undefined {
  const t = tcpTarget(tunnel);
  if (t.kind === 'binding') return undefined;
  return t.kind === 'cluster' ? { cluster: t.cluster } : { invalid: t.why };
}
