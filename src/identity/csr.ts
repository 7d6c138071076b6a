// A workload key and CSR shaped as ztunnel makes them (istio/ztunnel src/tls/csr.rs): EC P-256,
// empty subject, exactly one URI SAN (the SPIFFE ID), ECDSA with SHA-256. The key stays in memory.
import { webcrypto } from 'node:crypto';
import 'reflect-metadata'; // @peculiar/x509's dependency injection needs it loaded first
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as never);

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;

export interface KeyAndCsr {
  /** PKCS#8 PEM, never written anywhere. */
  readonly keyPem: string;
  readonly csrPem: string;
}

export function pkcs8Pem(der: ArrayBuffer): string {
  const b64 = Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n');
  return `-----BEGIN PRIVATE KEY-----\n${b64.trimEnd()}\n-----END PRIVATE KEY-----\n`;
}

export async function newKeyAndCsr(spiffeUri: string): Promise<KeyAndCsr> {
  const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys: keys as never,
    signingAlgorithm: SIGN,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeUri }])],
  });
  const keyPem = pkcs8Pem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return { keyPem, csrPem: csr.toString('pem') };
}

/**
 * A self-signed stand-in the TLS listener can hold before the CA has answered: nobody trusts it,
 * so no peer completes a handshake with it, and readiness stays 503 meanwhile.
 */
export async function placeholderCertificate(spiffeUri: string): Promise<{ cert: string; key: string }> {
  const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=node-waypoint placeholder (no certificate from the CA yet)',
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 86_400_000),
    signingAlgorithm: SIGN,
    keys: keys as never,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeUri }])],
  });
  return {
    cert: cert.toString('pem'),
    key: pkcs8Pem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)),
  };
}
