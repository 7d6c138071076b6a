// /certs as Envoy shapes it: the workload certificate chain and the trust bundle, each certificate
// with serial, SPIFFE SANs, validity and days until expiry.
import { X509Certificate } from 'node:crypto';
import type { Credentials } from '../identity/credentials.ts';

interface CertDetail {
  path: string;
  serial_number: string;
  subject: string;
  subject_alt_names: Array<{ uri?: string; dns?: string }>;
  days_until_expiration: string;
  valid_from: string;
  expiration_time: string;
}

const PEM = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function details(pem: string, path: string): CertDetail[] {
  return (pem.match(PEM) ?? []).map((block) => {
    const c = new X509Certificate(block);
    const sans = (c.subjectAltName ?? '').split(', ').filter(Boolean);
    return {
      path,
      serial_number: c.serialNumber.toLowerCase(),
      subject: (c.subject ?? '').replace(/\n/g, ','),
      subject_alt_names: sans.map((s) =>
        s.startsWith('URI:') ? { uri: s.slice(4) } : { dns: s.replace(/^DNS:/, '') },
      ),
      days_until_expiration: String(Math.floor((Date.parse(c.validTo) - Date.now()) / 86_400_000)),
      valid_from: new Date(c.validFrom).toISOString(),
      expiration_time: new Date(c.validTo).toISOString(),
    };
  });
}

export function certsPage(credentials: Credentials): unknown {
  const tls = credentials.tlsOptions();
  return {
    identity: credentials.identity.uri,
    certificates: [
      {
        ca_cert: details(tls.ca, 'ROOTCA'),
        cert_chain: details(tls.cert, 'default'),
      },
    ],
  };
}
