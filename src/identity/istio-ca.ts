// One CreateCertificate call to istiod's CA (istio.v1.auth.IstioCertificateService on 15012), as
// ztunnel and istio-agent make it: TLS verified against the mesh root file, `authorization: Bearer`
// with the projected token (re-read on every call: kubelet rotates it), `clusterid` metadata.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export const CA_PROTO_DIR = fileURLToPath(new URL('./proto', import.meta.url));
export const CA_PROTO = 'security/v1alpha1/ca.proto';
export const CA_PROTO_OPTIONS = { includeDirs: [CA_PROTO_DIR], longs: String, defaults: true };

export interface CaClientOptions {
  /** HOST:PORT of the CA (Istio's CA_ADDR, e.g. istiod.istio-system.svc:15012). */
  readonly addr: string;
  /** The mesh root that signs the CA's serving certificate. */
  readonly rootFile: string;
  readonly tokenFile: string;
  readonly clusterId: string;
  /** The name checked in the CA's certificate; defaults to the host of addr (Istio's ISTIOD_SAN). */
  readonly serverName?: string;
  readonly timeoutMs?: number;
}

/** Why a call failed, in the words the log and the metric use. */
export type CaFailure =
  | 'unreachable'
  | 'token_unreadable'
  | 'token_rejected'
  | 'ttl_refused'
  | 'rejected'
  | 'bad_response';

export class CaError extends Error {
  override name = 'CaError';
  readonly reason: CaFailure;
  constructor(reason: CaFailure, message: string) {
    super(message);
    this.reason = reason;
  }
}

interface CaStub {
  CreateCertificate(
    req: { csr: string; validityDuration: string },
    md: unknown,
    opts: { deadline: number },
    cb: (err: (Error & { code?: number; details?: string }) | null, res?: { certChain?: string[] }) => void,
  ): void;
  close(): void;
}
type CaStubClass = new (target: string, creds: unknown, opts: Record<string, unknown>) => CaStub;

let loaded: Promise<{ grpc: typeof import('@grpc/grpc-js'); Service: CaStubClass }> | undefined;
function loadGrpc() {
  loaded ??= (async () => {
    const grpc = await import('@grpc/grpc-js');
    const loader = await import('@grpc/proto-loader');
    const pkg = grpc.loadPackageDefinition(loader.loadSync(CA_PROTO, CA_PROTO_OPTIONS)) as unknown as {
      istio: { v1: { auth: { IstioCertificateService: CaStubClass } } };
    };
    return { grpc, Service: pkg.istio.v1.auth.IstioCertificateService };
  })();
  return loaded;
}

async function readToken(file: string): Promise<string> {
  try {
    const token = (await readFile(file, 'utf8')).trim();
    if (!token) throw new Error('the file is empty');
    return token;
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new CaError('token_unreadable', `cannot read the CA token ${file}: ${why}`);
  }
}

function classify(code: number | undefined, details: string, addr: string): CaError {
  // gRPC status codes: 4 DEADLINE_EXCEEDED, 14 UNAVAILABLE, 16 UNAUTHENTICATED, 7 PERMISSION_DENIED, 3 INVALID_ARGUMENT.
  if (code === 14 || code === 4) return new CaError('unreachable', `CA ${addr} unreachable: ${details}`);
  if (code === 16 || code === 7)
    return new CaError('token_rejected', `CA ${addr} rejected the token: ${details}`);
  if (/ttl/i.test(details))
    return new CaError('ttl_refused', `CA ${addr} refused the requested TTL: ${details}`);
  return new CaError('rejected', `CA ${addr} refused the CSR (gRPC status ${code}): ${details}`);
}

/** Sends the CSR; resolves with cert_chain (leaf first, roots last). Throws CaError. */
export async function createCertificate(
  opts: CaClientOptions,
  csrPem: string,
  ttlSeconds: number,
): Promise<string[]> {
  const { grpc, Service } = await loadGrpc();
  const token = await readToken(opts.tokenFile);
  let root: Buffer;
  try {
    root = await readFile(opts.rootFile);
  } catch (err) {
    throw new CaError(
      'unreachable',
      `cannot read the CA root ${opts.rootFile}: ${(err as NodeJS.ErrnoException).code}`,
    );
  }
  const serverName = opts.serverName ?? opts.addr.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  // A channel per call: renewals are hours apart, and a new channel reads the root file afresh.
  const stub = new Service(opts.addr, grpc.credentials.createSsl(root), {
    'grpc.ssl_target_name_override': serverName,
    'grpc.default_authority': serverName,
  });
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${token}`);
  md.set('clusterid', opts.clusterId);
  try {
    const res = await new Promise<{ certChain?: string[] }>((resolve, reject) => {
      const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
      stub.CreateCertificate(
        { csr: csrPem, validityDuration: String(ttlSeconds) },
        md,
        { deadline },
        (err, r) =>
          err ? reject(classify(err.code, err.details ?? err.message, opts.addr)) : resolve(r ?? {}),
      );
    });
    const chain = res.certChain ?? [];
    if (chain.length < 2)
      throw new CaError(
        'bad_response',
        `CA ${opts.addr} answered a chain of ${chain.length} element(s); expected leaf … root`,
      );
    return chain;
  } finally {
    stub.close();
  }
}
