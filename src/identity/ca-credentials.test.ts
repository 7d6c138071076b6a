// Credentials from istiod's CA against a fake CA that implements the real proto over TLS.
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeIstioCa, ISTIOD_SAN } from '../../test/helpers/fake-istio-ca.ts';
import { createLogger } from '../observe/logger.ts';
import { backoffMs, type CaCredentials, caCredentials, renewalDelayMs, splitPem } from './ca-credentials.ts';
import type { CaError } from './istio-ca.ts';
import { uriSans } from './spiffe.ts';

const TOKEN = 'a-projected-token';
let dir: string;
let ca: FakeIstioCa;
const open: CaCredentials[] = [];
let logs: string[];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'istio-ca-'));
  ca = await FakeIstioCa.start({ ip: '127.25.78.1', token: TOKEN, clusterId: 'east', maxTtlSeconds: 3600 });
  await writeFile(join(dir, 'root-cert.pem'), ca.roots[0]!.rootPem);
  await writeFile(join(dir, 'istio-token'), `${TOKEN}\n`);
  logs = [];
});
afterEach(async () => {
  for (const c of open.splice(0)) c.close();
  ca.close();
  await rm(dir, { recursive: true, force: true });
});

async function start(over: { ttlSeconds?: number; maxBackoffMs?: number } = {}): Promise<CaCredentials> {
  const creds = await caCredentials({
    addr: ca.addr,
    serverName: ISTIOD_SAN,
    rootFile: join(dir, 'root-cert.pem'),
    tokenFile: join(dir, 'istio-token'),
    clusterId: 'east',
    trustDomain: 'cluster.local',
    namespace: 'shop',
    serviceAccount: 'waypoint',
    log: createLogger('info', (l) => logs.push(l)),
    ...over,
  });
  open.push(creds);
  return creds;
}

const next = <T>(creds: CaCredentials, event: string): Promise<T> =>
  new Promise((resolve) => creds.once(event, resolve));

describe('certificates from the CA', () => {
  it('gets a certificate for spiffe://TD/ns/NS/sa/SA with the token, clusterid and TTL asked for', async () => {
    const creds = await start({ ttlSeconds: 3600 });
    expect(creds.hasCertificate).toBe(false);
    await creds.certificateReady;
    const leaf = new X509Certificate(creds.tlsOptions().cert);
    expect(uriSans(leaf.subjectAltName)).toEqual(['spiffe://cluster.local/ns/shop/sa/waypoint']);
    expect(leaf.verify(new X509Certificate(ca.roots[0]!.rootPem).publicKey)).toBe(true);
    expect(ca.calls).toEqual([{ token: TOKEN, clusterId: 'east', ttl: 3600, uris: [creds.identity.uri] }]);
  });

  it('a rejected token: no certificate, not ready, and the log says why', async () => {
    await writeFile(join(dir, 'istio-token'), 'someone-elses-token');
    const creds = await start({ ttlSeconds: 600 });
    const err = await next<CaError>(creds, 'failed');
    expect(err.reason).toBe('token_rejected');
    expect(creds.hasCertificate).toBe(false);
    expect(logs.join('')).toMatch(/rejected the token: authenticate failure.*not ready/);
    // The token is re-read on every call: the kubelet's rotated token is used on the next try.
    await writeFile(join(dir, 'istio-token'), TOKEN);
    await creds.certificateReady;
    expect(ca.calls.map((c) => c.token)).toContain(TOKEN);
  });

  it('a TTL over the CA maximum is refused, and the log says so', async () => {
    const creds = await start({ ttlSeconds: 7200 });
    const err = await next<CaError>(creds, 'failed');
    expect(err.reason).toBe('ttl_refused');
    expect(logs.join('')).toContain('refused the requested TTL');
  });

  it('CA down at renewal: the old certificate stays, retries continue, the next one comes when it is back', async () => {
    const creds = await start({ ttlSeconds: 4, maxBackoffMs: 500 });
    await creds.certificateReady;
    const first = creds.tlsOptions().cert;
    ca.down();
    const err = await next<CaError>(creds, 'failed');
    expect(err.reason).toBe('unreachable');
    expect(creds.tlsOptions().cert).toBe(first);
    await next<CaError>(creds, 'failed'); // and it tries again
    expect(creds.tlsOptions().cert).toBe(first);
    expect(logs.join('')).toMatch(/unreachable.*keeping the current certificate/);
    const renewed = next(creds, 'issued');
    await ca.up();
    await renewed;
    expect(creds.tlsOptions().cert).not.toBe(first);
  });

  it('root rotation: the root file is watched, and the CA answer brings the new root too', async () => {
    const creds = await start({ ttlSeconds: 4 });
    await creds.certificateReady;
    const newRoot = await ca.rotateRoot();
    const rootsSeen = next<string[]>(creds, 'roots');
    await writeFile(join(dir, 'root-cert.pem'), `${newRoot.rootPem.trimEnd()}\n${ca.roots[1]!.rootPem}`);
    expect(await rootsSeen).toHaveLength(2);
    expect(splitPem(creds.tlsOptions().ca)).toContain(splitPem(newRoot.rootPem)[0]);
    await next(creds, 'issued'); // the renewal at half-life is signed by the new root
    const leaf = new X509Certificate(creds.tlsOptions().cert);
    expect(leaf.verify(new X509Certificate(newRoot.rootPem).publicKey)).toBe(true);
  });
});

describe('schedule', () => {
  it('renews at half-life, and backs off 1 s, 2 s, 4 s … up to 150 s', () => {
    expect(renewalDelayMs(0, 86_400_000, 1_000)).toBe(43_199_000);
    expect(renewalDelayMs(0, 10_000, 20_000)).toBe(0);
    expect([1, 2, 3, 8, 9, 50].map((n) => backoffMs(n))).toEqual([
      1000, 2000, 4000, 128_000, 150_000, 150_000,
    ]);
  });
});
