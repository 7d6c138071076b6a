// How a Service port's bytes are treated: Istio's ConvertProtocol (istio/istio
// pkg/config/kube/conversion.go, pkg/config/protocol/instance.go) mapped onto our AppProtocol.
// Getting this wrong either breaks server-first protocols (sniffing a MySQL port waits forever for
// the client to speak) or sends HTTP through a plain TCP proxy, so it follows Istio exactly.
import type { AppProtocol } from '../model.ts';

/** Prefixes Istio recognises (before the first `-`, case-insensitive). `udp` means not carried. */
export const PROTOCOL_PREFIXES: ReadonlyMap<string, AppProtocol | 'udp'> = new Map([
  ['http', 'http'],
  ['http_proxy', 'http'],
  ['http2', 'http2'],
  ['https', 'tls'],
  ['grpc', 'grpc'],
  ['tcp', 'tcp'],
  ['tls', 'tls'],
  ['mongo', 'tcp'],
  ['mysql', 'tcp'],
  ['redis', 'tcp'],
  ['udp', 'udp'],
]);

/** Gateway API's standard appProtocol values (only valid as appProtocol: names cannot hold `/`). */
export const KUBERNETES_APP_PROTOCOLS: ReadonlyMap<string, AppProtocol> = new Map([
  ['kubernetes.io/h2c', 'http2'],
  ['kubernetes.io/ws', 'http'],
  ['kubernetes.io/wss', 'tls'],
]);

/** SMTP, DNS, MySQL, MongoDB: server-first or binary, so an unnamed port there is TCP, not sniffed. */
export const WELL_KNOWN_TCP_PORTS: ReadonlySet<number> = new Set([25, 53, 3306, 27017]);

/**
 * The protocol of one Service port, from `appProtocol` when set, else the port name. Returns
 * undefined for ports a waypoint never carries (UDP and SCTP: HBONE tunnels TCP only).
 */
export function portProtocol(
  port: number,
  name: string | null | undefined,
  transport: string | null | undefined,
  appProtocol: string | null | undefined,
): AppProtocol | undefined {
  if (transport === 'UDP' || transport === 'SCTP') return undefined;
  const source = (appProtocol ? appProtocol : (name ?? '')).toLowerCase();
  const standard = KUBERNETES_APP_PROTOCOLS.get(source);
  if (standard) return standard;
  // Checked before the split because the name itself contains a `-`.
  if (source.startsWith('grpc-web')) return 'http';
  const dash = source.indexOf('-');
  const prefix = dash < 0 ? source : source.slice(0, dash);
  const known = PROTOCOL_PREFIXES.get(prefix);
  if (known === 'udp') return undefined;
  if (known) return known;
  return WELL_KNOWN_TCP_PORTS.has(port) ? 'tcp' : 'unknown';
}
