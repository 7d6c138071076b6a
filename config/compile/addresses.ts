// Address keys as the data path looks them up: `ip:port`, `[ipv6]:port`. IPv6 is written in its
// canonical compressed form so `::0001` in a manifest and `::1` from a CONNECT authority meet.
import { isIPv6 } from 'node:net';

export function canonicalIP(ip: string): string {
  if (!isIPv6(ip)) return ip;
  // The WHATWG URL serializer produces RFC 5952 text (lowercase, longest zero run compressed).
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
}

export function addressKey(ip: string, port: number): string {
  const c = canonicalIP(ip);
  return isIPv6(c) ? `[${c}]:${port}` : `${c}:${port}`;
}
