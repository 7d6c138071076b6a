// Header hygiene between hops: hop-by-hop headers never cross the proxy (RFC 9110 §7.6.1), HTTP/2
// forbids connection-specific ones outright (RFC 9113 §8.2.2), and pseudo-headers belong to one hop.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** Headers that belong to one hop: never forwarded, in either direction. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'http2-settings',
  'proxy-authenticate',
  'proxy-authorization',
]);

function connectionListed(headers: IncomingHttpHeaders): Set<string> | undefined {
  const c = headers.connection;
  if (!c) return undefined;
  // The common value names only a hop-by-hop header already: no set to build.
  if (c === 'keep-alive' || c === 'Keep-Alive') return undefined;
  const listed = new Set<string>();
  for (const token of (Array.isArray(c) ? c.join(',') : c).split(',')) {
    const t = token.trim().toLowerCase();
    if (t) listed.add(t);
  }
  return listed;
}

/** Request headers as they go upstream. Keeps `te: trailers` (gRPC needs it over HTTP/2). */
export function upstreamRequestHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const listed = connectionListed(headers);
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    if (name.charCodeAt(0) === 58 /* ':' */) continue;
    if (HOP_BY_HOP.has(name) || listed?.has(name) || name === 'expect') {
      if (name === 'te' && String(headers.te).toLowerCase().includes('trailers')) out.te = 'trailers';
      continue;
    }
    out[name] = headers[name];
  }
  return out;
}

/** Response headers as they go downstream. */
export function downstreamResponseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const listed = connectionListed(headers);
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    if (name.charCodeAt(0) === 58 || HOP_BY_HOP.has(name) || listed?.has(name)) continue;
    out[name] = headers[name];
  }
  return out;
}
