// A stand-in for istiod's CA (ztunnel has the same in src/test_helpers/ca.rs): a @grpc/grpc-js
// server implementing istio.v1.auth.IstioCertificateService from the real proto, over TLS with a
// serving certificate for istiod.istio-system.svc, signing with a dev CA. It checks what istiod and
// istio-csr check: the Bearer token, clusterid, the TTL limit, and the CSR's shape.
import { webcrypto } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';
import 'reflect-metadata'; // @peculiar/x509's dependency injection needs it loaded first
import * as x509 from '@peculiar/x509';
import { pkcs8Pem } from '../../src/identity/csr.ts';
import { createDevCa, type DevCa } from '../../src/identity/dev-ca.ts';
import { CA_PROTO, CA_PROTO_OPTIONS } from '../../src/identity/istio-ca.ts';

const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const ISTIOD_SAN = 'istiod.istio-system.svc';

export interface FakeCaOptions {
  readonly ip: string;
  readonly token: string;
  readonly clusterId?: string;
  readonly maxTtlSeconds?: number;
  /** Sign with this CA (e.g. the test mesh's, which its ztunnel stand-ins trust); default a new one. */
  readonly ca?: DevCa;
}

interface CaRequest {
  csr: string;
  validityDuration: string;
}

type Reply = (err: grpc.ServiceError | null, res?: { certChain: string[] }) => void;

async function importKey(pem: string): Promise<webcrypto.CryptoKey> {
  const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  return webcrypto.subtle.importKey('pkcs8', der, EC, false, ['sign']);
}

function fail(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}

export class FakeIstioCa {
  /** Roots the CA returns last in cert_chain (the newest first after a rotation). */
  roots: DevCa[];
  port = 0;
  /** What each call carried, for assertions. */
  readonly calls: Array<{ token: string; clusterId: string; ttl: number; uris: string[] }> = [];
  readonly #opts: FakeCaOptions;
  #server: grpc.Server | undefined;
  #serving: { cert: string; key: string } | undefined;

  private constructor(opts: FakeCaOptions, ca: DevCa) {
    this.#opts = opts;
    this.roots = [ca];
  }

  static async start(opts: FakeCaOptions): Promise<FakeIstioCa> {
    const ca = new FakeIstioCa(opts, opts.ca ?? (await createDevCa({ trustDomain: 'cluster.local' })));
    ca.#serving = await ca.#servingCert();
    await ca.up();
    return ca;
  }

  get addr(): string {
    return `${this.#opts.ip}:${this.port}`;
  }

  /** A new signing root; the answer's last element carries the new root and the old one. */
  async rotateRoot(): Promise<DevCa> {
    const next = await createDevCa({ trustDomain: 'cluster.local' });
    this.roots = [next, ...this.roots];
    return next;
  }

  async up(): Promise<void> {
    const server = new grpc.Server();
    const pkg = grpc.loadPackageDefinition(loader.loadSync(CA_PROTO, CA_PROTO_OPTIONS)) as unknown as {
      istio: { v1: { auth: { IstioCertificateService: { service: grpc.ServiceDefinition } } } };
    };
    server.addService(pkg.istio.v1.auth.IstioCertificateService.service, {
      CreateCertificate: (call: grpc.ServerUnaryCall<CaRequest, unknown>, reply: Reply) => {
        this.#handle(call).then(
          (chain) => reply(null, { certChain: chain }),
          (err: grpc.ServiceError) => reply(err),
        );
      },
    });
    const creds = grpc.ServerCredentials.createSsl(null, [
      { cert_chain: Buffer.from(this.#serving!.cert), private_key: Buffer.from(this.#serving!.key) },
    ]);
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${this.#opts.ip}:${this.port}`, creds, (err, port) =>
        err ? reject(err) : resolve(port),
      ),
    );
    this.#server = server;
  }

  /** Stops answering (connections refused) until up() again, on the same port. */
  down(): void {
    this.#server?.forceShutdown();
    this.#server = undefined;
  }

  async #handle(call: grpc.ServerUnaryCall<CaRequest, unknown>): Promise<string[]> {
    const auth = String(call.metadata.get('authorization')[0] ?? '');
    const clusterId = String(call.metadata.get('clusterid')[0] ?? '');
    const ttl = Number(call.request.validityDuration);
    const csr = new x509.Pkcs10CertificateRequest(call.request.csr);
    const san = csr.extensions.find((e) => e instanceof x509.SubjectAlternativeNameExtension) as
      | x509.SubjectAlternativeNameExtension
      | undefined;
    const uris = (san?.names.items ?? []).filter((n) => n.type === 'url').map((n) => n.value);
    this.calls.push({ token: auth.replace(/^Bearer /, ''), clusterId, ttl, uris });
    if (auth !== `Bearer ${this.#opts.token}`)
      throw fail(grpc.status.UNAUTHENTICATED, 'authenticate failure: failed to validate the JWT');
    if (clusterId !== (this.#opts.clusterId ?? 'Kubernetes'))
      throw fail(grpc.status.UNAUTHENTICATED, `unknown cluster ${JSON.stringify(clusterId)}`);
    const max = this.#opts.maxTtlSeconds ?? 90 * 86_400;
    if (ttl > max)
      throw fail(
        grpc.status.INVALID_ARGUMENT,
        `CSR signing error (requested TTL ${ttl}s is greater than the max allowed TTL ${max}s)`,
      );
    if (!(await csr.verify()) || csr.subject !== '' || uris.length !== 1 || san!.names.items.length !== 1)
      throw fail(
        grpc.status.INVALID_ARGUMENT,
        'CSR must be self-signed, with an empty subject and exactly one URI SAN',
      );
    const leaf = await this.#sign(csr, uris[0]!, ttl > 0 ? ttl : 86_400);
    return [leaf, this.roots.map((r) => r.rootPem.trimEnd()).join('\n')];
  }

  async #sign(csr: x509.Pkcs10CertificateRequest, uri: string, ttl: number): Promise<string> {
    const root = this.roots[0]!;
    const rootCert = new x509.X509Certificate(root.rootPem);
    const now = Math.floor(Date.now() / 1000) * 1000;
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(8)))
        .toString('hex')
        .replace(/^./, '1'),
      subject: '',
      issuer: rootCert.subject,
      notBefore: new Date(now),
      notAfter: new Date(now + ttl * 1000),
      signingAlgorithm: SIGN,
      publicKey: csr.publicKey,
      signingKey: await importKey(root.rootKeyPem),
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
          true,
        ),
        new x509.ExtendedKeyUsageExtension([
          x509.ExtendedKeyUsage.serverAuth,
          x509.ExtendedKeyUsage.clientAuth,
        ]),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: uri }], true),
        // Roots old and new share a subject during a rotation; the key id tells them apart.
        await x509.AuthorityKeyIdentifierExtension.create(rootCert, false),
      ],
    });
    return cert.toString('pem');
  }

  /** istiod's serving certificate on 15012: DNS SAN istiod.istio-system.svc, signed by the first root. */
  async #servingCert(): Promise<{ cert: string; key: string }> {
    const root = this.roots[0]!;
    const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: '02',
      subject: 'CN=istiod',
      issuer: new x509.X509Certificate(root.rootPem).subject,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 86_400_000),
      signingAlgorithm: SIGN,
      publicKey: keys.publicKey as never,
      signingKey: await importKey(root.rootKeyPem),
      extensions: [
        new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: ISTIOD_SAN }]),
        await x509.AuthorityKeyIdentifierExtension.create(new x509.X509Certificate(root.rootPem), false),
      ],
    });
    return {
      cert: cert.toString('pem'),
      key: pkcs8Pem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)),
    };
  }

  close(): void {
    this.down();
  }
}
