// A throwaway certificate authority for demos, tests and local runs: EC P-256 keys, SPIFFE URI SANs,
// certificates valid for both client and server use, as istiod issues them. @peculiar/x509 builds
// the X.509 structures (Node's crypto can make keys but not certificates).
import { webcrypto } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import 'reflect-metadata'; // @peculiar/x509's dependency injection needs it loaded first
import * as x509 from '@peculiar/x509';
import { parseSpiffeId } from './spiffe.ts';

x509.cryptoProvider.set(webcrypto as never);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;

export interface IssuedCert {
  /** PEM of the leaf certificate followed by the issuing chain (without the root). */
  readonly certChainPem: string;
  readonly keyPem: string;
  readonly identity: string;
}

export interface IssueOptions {
  readonly validityDays?: number;
  readonly notBefore?: Date;
}

export interface DevCa {
  readonly rootPem: string;
  readonly rootKeyPem: string;
  issue(identity: string, opts?: IssueOptions): Promise<IssuedCert>;
}

async function keyToPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN PRIVATE KEY-----\n${b64.trimEnd()}\n-----END PRIVATE KEY-----\n`;
}

function newKeys(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
}

function randomSerial(): string {
  // Positive 16-byte serial: clear the top bit so the DER integer needs no sign byte.
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = bytes[0]! & 0x7f;
  return Buffer.from(bytes).toString('hex');
}

/** Creates a new root CA (self-signed) whose name says what it is for. */
export async function createDevCa(
  opts: { trustDomain?: string; validityDays?: number } = {},
): Promise<DevCa> {
  const trustDomain = opts.trustDomain ?? 'cluster.local';
  const days = opts.validityDays ?? 365;
  const keys = await newKeys();
  const notBefore = new Date(Date.now() - 60_000);
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `O=node-waypoint dev CA, CN=${trustDomain} root`,
    notBefore,
    notAfter: new Date(notBefore.getTime() + days * 86_400_000),
    signingAlgorithm: SIGN,
    keys: keys as never,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as never),
    ],
  });
  return {
    rootPem: root.toString('pem'),
    rootKeyPem: await keyToPem(keys.privateKey),
    issue: (identity, issueOpts = {}) => issueLeaf(root, keys.privateKey, identity, days, issueOpts),
  };
}

/** A workload certificate for `identity` signed by the root: Istio's shape (empty subject, URI SAN). */
async function issueLeaf(
  root: x509.X509Certificate,
  rootKey: CryptoKey,
  identity: string,
  days: number,
  issueOpts: IssueOptions,
): Promise<IssuedCert> {
  if (!parseSpiffeId(identity)) {
    throw new Error(`not a SPIFFE identity of the form spiffe://TRUST_DOMAIN/ns/NS/sa/SA: ${identity}`);
  }
  const leafKeys = await newKeys();
  const start = issueOpts.notBefore ?? new Date(Date.now() - 60_000);
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    // Istio workload certificates have an empty subject; the identity is the URI SAN alone.
    subject: '',
    issuer: root.subject,
    notBefore: start,
    notAfter: new Date(start.getTime() + (issueOpts.validityDays ?? days) * 86_400_000),
    signingAlgorithm: SIGN,
    publicKey: leafKeys.publicKey as never,
    signingKey: rootKey as never,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension(
        [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
        false,
      ),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: identity }], true),
      await x509.AuthorityKeyIdentifierExtension.create(root, false),
    ],
  });
  return {
    certChainPem: leaf.toString('pem') + '\n',
    keyPem: await keyToPem(leafKeys.privateKey),
    identity,
  };
}

/** File names dev-ca writes for an identity: NS.SA.cert.pem / NS.SA.key.pem. */
export function devCertFileNames(identity: string): { cert: string; key: string } {
  const id = parseSpiffeId(identity);
  if (!id) throw new Error(`not a SPIFFE identity: ${identity}`);
  const base = `${id.namespace}.${id.serviceAccount}`;
  return { cert: `${base}.cert.pem`, key: `${base}.key.pem` };
}

/** Writes root-cert.pem (+ its key) and a cert/key pair for each identity into dir. */
export async function writeDevCa(
  dir: string,
  identities: readonly string[],
  opts: { trustDomain?: string; validityDays?: number } = {},
): Promise<{ rootCert: string; files: Array<{ identity: string; cert: string; key: string }> }> {
  await mkdir(dir, { recursive: true });
  const firstTd = identities.length > 0 ? parseSpiffeId(identities[0]!)?.trustDomain : undefined;
  const ca = await createDevCa({ trustDomain: opts.trustDomain ?? firstTd ?? 'cluster.local', ...opts });
  const rootCert = join(dir, 'root-cert.pem');
  await writeFile(rootCert, ca.rootPem);
  await writeFile(join(dir, 'root-key.pem'), ca.rootKeyPem, { mode: 0o600 });
  const files = [];
  for (const identity of identities) {
    const issued = await ca.issue(identity, opts.validityDays ? { validityDays: opts.validityDays } : {});
    const names = devCertFileNames(identity);
    const cert = join(dir, names.cert);
    const key = join(dir, names.key);
    await writeFile(cert, issued.certChainPem);
    await writeFile(key, issued.keyPem, { mode: 0o600 });
    files.push({ identity, cert, key });
  }
  return { rootCert, files };
}
