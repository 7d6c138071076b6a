// The waypoint's (or the controller's) identity from istiod's CA, live: a new in-memory key and CSR
// at start and at every half-life, retried with back-off capped at 150 s as ztunnel does
// (src/identity/manager.rs); the old certificate stays in use until it expires. Trust = the roots
// of the CA's answer plus the mesh root file, which is watched so a root rotation is picked up.
import { X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Registry } from 'prom-client';
import client from 'prom-client';
import type { Logger } from '../observe/logger.ts';
import { type Credentials, inspectBundle } from './credentials.ts';
import { newKeyAndCsr, placeholderCertificate } from './csr.ts';
import { type CaClientOptions, CaError, createCertificate } from './istio-ca.ts';
import { type SpiffeId, spiffeId } from './spiffe.ts';

export interface CaCredentialsOptions extends CaClientOptions {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  /** Requested validity (seconds); Istio's default 24 h. */
  readonly ttlSeconds?: number;
  readonly maxBackoffMs?: number;
  readonly log: Logger;
}

export const MAX_BACKOFF_MS = 150_000;

/** When to try again after `failures` failures in a row: 1 s, 2 s, 4 s … capped. */
export function backoffMs(failures: number, maxMs = MAX_BACKOFF_MS): number {
  return Math.min(maxMs, 1000 * 2 ** Math.max(0, failures - 1));
}

/** Half-life of a certificate, as a delay from now (0 if it is already past). */
export function renewalDelayMs(notBefore: number, notAfter: number, now: number): number {
  return Math.max(0, notBefore + (notAfter - notBefore) / 2 - now);
}

/** Every certificate in a PEM text, normalised (so the same root from two places counts once). */
export function splitPem(text: string): string[] {
  return (text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
    (p) => `${p.replace(/\r/g, '')}\n`,
  );
}

interface Issued {
  readonly cert: string;
  readonly key: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly serial: string;
}

/**
 * Events (tests and operators' logs wait on them): 'issued' (Issued), 'failed' (CaError),
 * 'roots' (string[]): the trust bundle changed.
 */
export class CaCredentials extends EventEmitter implements Credentials {
  readonly identity: SpiffeId;
  readonly certificateReady: Promise<void>;
  readonly #opts: CaCredentialsOptions;
  readonly #listeners: Array<() => void> = [];
  #issued: Issued | undefined;
  #placeholder: { cert: string; key: string };
  #responseRoots: string[] = [];
  #fileRoots: string[] = [];
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #watcher: FSWatcher | undefined;
  #rootTimer: NodeJS.Timeout | undefined;
  #closed = false;
  #ready!: () => void;
  #metrics: { issued: client.Counter; failures: client.Counter<'reason'> } | undefined;

  constructor(opts: CaCredentialsOptions, placeholder: { cert: string; key: string }) {
    super();
    this.#opts = opts;
    this.#placeholder = placeholder;
    this.identity = spiffeId(opts.trustDomain, opts.namespace, opts.serviceAccount);
    this.certificateReady = new Promise((r) => (this.#ready = r));
    this.on('error', () => {}); // failures are events for listeners, never a crash
  }

  get hasCertificate(): boolean {
    return this.#issued !== undefined;
  }

  tlsOptions() {
    const live = this.#issued ?? this.#placeholder;
    const roots = [...new Set([...this.#responseRoots, ...this.#fileRoots])];
    return { cert: live.cert, key: live.key, ca: roots.join('') };
  }

  onChange(listener: () => void): void {
    this.#listeners.push(listener);
  }

  /** Reads the root file, watches it, and starts the first request (readiness waits for it). */
  async start(): Promise<void> {
    await this.#readRootFile();
    this.#watchRootFile();
    this.#attempt();
  }

  #attempt(): void {
    if (this.#closed) return;
    this.#request().then(
      (delay) => this.#schedule(delay),
      (err: unknown) => this.#schedule(this.#failed(err)),
    );
  }

  #schedule(delayMs: number): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => this.#attempt(), delayMs);
    this.#timer.unref();
  }

  async #request(): Promise<number> {
    const { keyPem, csrPem } = await newKeyAndCsr(this.identity.uri);
    const chain = await createCertificate(this.#opts, csrPem, this.#opts.ttlSeconds ?? 86_400);
    const cert = chain.slice(0, -1).join('\n').replace(/\n+/g, '\n');
    const roots = splitPem(chain[chain.length - 1]!);
    let leaf: X509Certificate;
    try {
      leaf = new X509Certificate(cert);
      inspectBundle({ cert, key: keyPem, ca: roots.join('') }, `certificate from ${this.#opts.addr}`);
    } catch (err) {
      throw new CaError('bad_response', (err as Error).message);
    }
    const issued: Issued = {
      cert,
      key: keyPem,
      notBefore: Date.parse(leaf.validFrom),
      notAfter: Date.parse(leaf.validTo),
      serial: leaf.serialNumber,
    };
    if (this.#closed) return 0;
    this.#issued = issued;
    this.#responseRoots = roots;
    this.#failures = 0;
    this.#metrics?.issued.inc();
    this.#changed();
    const delay = renewalDelayMs(issued.notBefore, issued.notAfter, Date.now());
    this.#opts.log.info('certificate: issued by the CA', {
      identity: this.identity.uri,
      serial: issued.serial,
      valid_to: leaf.validTo,
      renew_in_s: Math.round(delay / 1000),
    });
    this.#ready();
    this.emit('issued', issued);
    return delay;
  }

  #failed(err: unknown): number {
    const e = err instanceof CaError ? err : new CaError('rejected', (err as Error).message);
    this.#failures++;
    this.#metrics?.failures.labels(e.reason).inc();
    const delay = backoffMs(this.#failures, this.#opts.maxBackoffMs);
    const current = this.#issued;
    const keeping = !current
      ? 'no certificate yet: not ready'
      : current.notAfter > Date.now()
        ? `keeping the current certificate (valid to ${new Date(current.notAfter).toISOString()})`
        : `the current certificate EXPIRED at ${new Date(current.notAfter).toISOString()}`;
    this.#opts.log.error(`certificate: ${e.message}; ${keeping}; retrying in ${delay / 1000}s`, {
      reason: e.reason,
      failures: this.#failures,
    });
    this.emit('failed', e);
    return delay;
  }

  async #readRootFile(): Promise<void> {
    try {
      const roots = splitPem(await readFile(this.#opts.rootFile, 'utf8'));
      if (roots.length === 0) throw new Error('no certificate in it');
      if (roots.join('') === this.#fileRoots.join('')) return;
      this.#fileRoots = roots;
      this.#opts.log.info('certificate: mesh roots loaded', {
        file: this.#opts.rootFile,
        roots: roots.length,
      });
      this.#changed();
      this.emit('roots', roots);
    } catch (err) {
      this.#opts.log.error('certificate: cannot read the mesh root file; keeping the roots in force', {
        file: this.#opts.rootFile,
        error: (err as NodeJS.ErrnoException).code ?? (err as Error).message,
      });
    }
  }

  #watchRootFile(): void {
    // ConfigMap mounts swap a symlink in the directory: watch the directory, not the file.
    const name = basename(this.#opts.rootFile);
    this.#watcher = watch(dirname(this.#opts.rootFile), { persistent: false }, (_e, file) => {
      if (file && file !== name && !String(file).startsWith('..')) return;
      clearTimeout(this.#rootTimer);
      this.#rootTimer = setTimeout(() => void this.#readRootFile(), 100);
    });
    this.#watcher.on('error', () => {});
  }

  #changed(): void {
    for (const l of this.#listeners) {
      try {
        l();
      } catch {
        // One listener's trouble must not keep the others on the old certificate.
      }
    }
  }

  /** waypoint_certificate_* series on the given registry. */
  registerMetrics(registry: Registry): void {
    const self = this;
    new client.Gauge({
      name: 'waypoint_certificate_expiry_seconds',
      help: 'Expiry of the workload certificate in force (Unix seconds; 0 before the first)',
      registers: [registry],
      collect() {
        this.set(self.#issued ? self.#issued.notAfter / 1000 : 0);
      },
    });
    this.#metrics = {
      issued: new client.Counter({
        name: 'waypoint_certificate_renewals_total',
        help: 'Certificates issued by the CA since start (the first included)',
        registers: [registry],
      }),
      failures: new client.Counter({
        name: 'waypoint_certificate_failures_total',
        help: 'Failed certificate requests, by reason',
        labelNames: ['reason'] as const,
        registers: [registry],
      }),
    };
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#rootTimer);
    this.#watcher?.close();
  }
}

/** Starts the credentials: resolves at once (the first certificate comes later: `certificateReady`). */
export async function caCredentials(opts: CaCredentialsOptions): Promise<CaCredentials> {
  const uri = `spiffe://${opts.trustDomain}/ns/${opts.namespace}/sa/${opts.serviceAccount}`;
  const creds = new CaCredentials(opts, await placeholderCertificate(uri));
  await creds.start();
  return creds;
}
