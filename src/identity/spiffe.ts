// SPIFFE identities as Istio uses them: spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT.
import { X509Certificate } from 'node:crypto';

export interface SpiffeId {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  /** The full URI, spiffe://td/ns/NS/sa/SA. */
  readonly uri: string;
  /** The URI without the scheme, as AuthorizationPolicy principals spell it. */
  readonly principal: string;
}

export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): SpiffeId {
  const principal = `${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
  return Object.freeze({ trustDomain, namespace, serviceAccount, uri: `spiffe://${principal}`, principal });
}

/** Parses an Istio SPIFFE URI; returns undefined for anything that is not exactly that shape. */
export function parseSpiffeId(uri: string): SpiffeId | undefined {
  if (!uri.startsWith('spiffe://')) return undefined;
  const parts = uri.slice('spiffe://'.length).split('/');
  if (parts.length !== 5 || parts[1] !== 'ns' || parts[3] !== 'sa') return undefined;
  const [td, , ns, , sa] = parts as [string, string, string, string, string];
  if (!td || !ns || !sa) return undefined;
  return spiffeId(td, ns, sa);
}

/** URI SANs of a certificate, in order, from Node's subjectAltName string. */
export function uriSans(subjectAltName: string | undefined): string[] {
  if (!subjectAltName) return [];
  const out: string[] = [];
  // Node renders SANs as `URI:spiffe://..., DNS:x`; values containing commas or quotes are JSON-quoted.
  for (const m of subjectAltName.matchAll(/URI:("(?:[^"\\]|\\.)*"|[^,]*)/g)) {
    const raw = m[1]!.trim();
    out.push(raw.startsWith('"') ? (JSON.parse(raw) as string) : raw);
  }
  return out;
}

/** The identity of a certificate: its first URI SAN that is an Istio SPIFFE ID (ztunnel reads the first). */
export function identityOfSubjectAltName(subjectAltName: string | undefined): SpiffeId | undefined {
  for (const uri of uriSans(subjectAltName)) {
    const id = parseSpiffeId(uri);
    if (id) return id;
  }
  return undefined;
}

export function identityOfPem(pem: string | Buffer): SpiffeId | undefined {
  return identityOfSubjectAltName(new X509Certificate(pem).subjectAltName);
}
