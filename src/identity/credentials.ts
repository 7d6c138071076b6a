// The waypoint's own workload certificate, key and trust bundle. Loaded from PEM files and reloaded
// when they change (cert-manager and Kubernetes secret mounts replace files by symlink swap, so the
// directories are watched, not the files), or given in memory by tests and the demo.
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { Logger } from '../observe/logger.ts';
import { identityOfSubjectAltName, type SpiffeId } from './spiffe.ts';

export interface PemBundle {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

export interface Credentials {
  readonly identity: SpiffeId;
  /** cert, key and ca for tls.createSecureContext / tls.connect. */
  tlsOptions(): { cert: string; key: string; ca: string };
  onChange(listener: () => void): void;
  close(): void;
  /** Credentials from a CA: resolves with the first certificate (readiness waits for it). */
  readonly certificateReady?: Promise<void>;
  /** Their own metrics (certificate expiry, renewals, failures) on the waypoint's registry. */
  registerMetrics?(registry: import('prom-client').Registry): void;
}

/** Checks a bundle and returns its identity; throws an Error that says what is wrong. */
export function inspectBundle(bundle: PemBundle, source: string): SpiffeId {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(bundle.cert);
  } catch (err) {
    throw new Error(`${source}: certificate is not PEM X.509: ${(err as Error).message}`);
  }
  const identity = identityOfSubjectAltName(leaf.subjectAltName);
  if (!identity) throw new Error(`${source}: certificate has no SPIFFE URI SAN (spiffe://TD/ns/NS/sa/SA)`);
  if (Date.parse(leaf.validTo) < Date.now())
    throw new Error(`${source}: certificate expired on ${leaf.validTo}`);
  if (!bundle.ca.includes('BEGIN CERTIFICATE')) throw new Error(`${source}: trust bundle has no certificate`);
  let key: KeyObject;
  try {
    key = createPrivateKey(bundle.key);
  } catch (err) {
    throw new Error(`${source}: private key is not a PEM private key: ${(err as Error).message}`);
  }
  // A rotation caught half way (new key, old certificate) must not replace a working pair.
  if (!leaf.checkPrivateKey(key)) throw new Error(`${source}: private key does not match the certificate`);
  try {
    createSecureContext({ cert: bundle.cert, key: bundle.key, ca: bundle.ca });
  } catch (err) {
    throw new Error(`${source}: not usable for TLS: ${(err as Error).message}`);
  }
  return identity;
}

class StaticCredentials implements Credentials {
  #bundle: PemBundle;
  #identity: SpiffeId;
  readonly #listeners: Array<() => void> = [];
  constructor(bundle: PemBundle, source: string) {
    this.#identity = inspectBundle(bundle, source);
    this.#bundle = bundle;
  }
  get identity(): SpiffeId {
    return this.#identity;
  }
  tlsOptions() {
    return { cert: this.#bundle.cert, key: this.#bundle.key, ca: this.#bundle.ca };
  }
  onChange(listener: () => void): void {
    this.#listeners.push(listener);
  }
  /**
   * Swaps the bundle (after checking it) and tells listeners. The identity may not change: peers pin
   * it, so a certificate for another identity is a mistake, not a rotation.
   */
  replace(bundle: PemBundle, source: string): void {
    const identity = inspectBundle(bundle, source);
    if (identity.uri !== this.#identity.uri)
      throw new Error(`${source}: new certificate is for ${identity.uri}, not ${this.#identity.uri}`);
    this.#bundle = bundle;
    for (const l of this.#listeners) {
      try {
        l();
      } catch {
        // One listener's trouble must not keep the others on the old certificate.
      }
    }
  }
  close(): void {}
}

export function memoryCredentials(bundle: PemBundle): Credentials & { replace(b: PemBundle): void } {
  const c = new StaticCredentials(bundle, 'in-memory credentials');
  return Object.assign(c, { replace: (b: PemBundle) => c.replace(b, 'in-memory credentials') });
}

export interface CredentialFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

async function readBundle(files: CredentialFiles): Promise<PemBundle> {
  const read = (what: string, path: string): Promise<string> =>
    readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new Error(`cannot read the ${what} ${path}: ${err.code ?? err.message}`, { cause: err });
    });
  const [cert, key, ca] = await Promise.all([
    read('certificate', files.cert),
    read('private key', files.key),
    read('trust bundle', files.ca),
  ]);
  return { cert, key, ca };
}

/** Loads the files (failing loudly if they are bad) and reloads them on change; a bad reload is logged and ignored. */
export async function fileCredentials(files: CredentialFiles, log: Logger): Promise<Credentials> {
  const source = `${files.cert} / ${files.key} / ${files.ca}`;
  const creds = new StaticCredentials(await readBundle(files), source);
  const watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | undefined;
  const reload = (): void => {
    clearTimeout(timer);
    // Writers replace cert and key in separate steps; wait for both.
    timer = setTimeout(async () => {
      try {
        const bundle = await readBundle(files);
        const current = creds.tlsOptions();
        if (bundle.cert === current.cert && bundle.key === current.key && bundle.ca === current.ca) return;
        creds.replace(bundle, source);
        const leaf = new X509Certificate(bundle.cert);
        log.info('credentials: reloaded', {
          identity: creds.identity.uri,
          serial: leaf.serialNumber,
          valid_to: leaf.validTo,
        });
      } catch (err) {
        log.error('credentials: reload failed, keeping the current certificate', {
          error: (err as Error).message,
        });
      }
    }, 200);
  };
  for (const dir of new Set([dirname(files.cert), dirname(files.key), dirname(files.ca)])) {
    const w = watch(dir, { persistent: false }, reload);
    w.on('error', () => {});
    watchers.push(w);
  }
  return Object.assign(creds, {
    close() {
      clearTimeout(timer);
      for (const w of watchers) w.close();
    },
  });
}
