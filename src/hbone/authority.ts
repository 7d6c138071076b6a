// Parsing of CONNECT :authority values: IPv4:port or [IPv6]:port. HBONE carries addresses, never names,
// between ztunnel and a waypoint in one network.
import { isIP } from 'node:net';

export interface HostPort {
  readonly ip: string;
  readonly port: number;
}

export function parseAuthority(authority: string | undefined): HostPort | undefined {
  if (!authority) return undefined;
  let host: string;
  let portText: string;
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    if (end < 0 || authority[end + 1] !== ':') return undefined;
    host = authority.slice(1, end);
    portText = authority.slice(end + 2);
  } else {
    const colon = authority.lastIndexOf(':');
    // An IPv6 address must be bracketed, or its last group would read as the port.
    if (colon <= 0 || authority.indexOf(':') !== colon) return undefined;
    host = authority.slice(0, colon);
    portText = authority.slice(colon + 1);
  }
  if (!/^\d{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port < 1 || port > 65535 || isIP(host) === 0) return undefined;
  return { ip: host, port };
}

export function formatAuthority(ip: string, port: number): string {
  return isIP(ip) === 6 ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** The `for=` of the first element of a Forwarded header (RFC 7239), as ztunnel writes it. */
export function forwardedFor(header: string | string[] | undefined): HostPort | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  const first = value.split(',')[0]!;
  for (const pair of first.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0 || pair.slice(0, eq).trim().toLowerCase() !== 'for') continue;
    const raw = pair
      .slice(eq + 1)
      .trim()
      .replace(/^"|"$/g, '');
    const parsed = parseAuthority(raw);
    if (parsed) return parsed;
    if (isIP(raw.replace(/^\[|\]$/g, ''))) return { ip: raw.replace(/^\[|\]$/g, ''), port: 0 };
  }
  return undefined;
}
