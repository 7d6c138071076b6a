import {
  type CryptoKey,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  type JWTPayload,
  SignJWT,
} from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import type { KeySet } from './jwks.ts';
import { JWT_STATUS, normalizeAudience, verifyToken } from './verify.ts';

const ISS = 'https://issuer.example';
const NOW = 1_800_000_000;
const otherKeyRef = 'other';
let key: CryptoKey;
let otherKey: CryptoKey;
let set: KeySet;

async function sign(claims: JWTPayload, opts: { kid?: string; with?: CryptoKey } = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: opts.kid ?? 'k1' })
    .sign(opts.with ?? key);
}

const source = () => ({ keys: async () => set });
const rule = (audiences: string[] = []) => ({ issuer: ISS, audiences });

beforeAll(async () => {
  const pair = await generateKeyPair('ES256');
  key = pair.privateKey;
  otherKey = (await generateKeyPair('ES256')).privateKey;
  set = createLocalJWKSet({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' }] });
});

describe('verifyToken', () => {
  it('accepts a good token and returns its payload and payload segment', async () => {
    const token = await sign({ iss: ISS, sub: 'alice', aud: 'shop', exp: NOW + 60 });
    const out = await verifyToken(token, rule(['shop']), source(), NOW);
    expect(out.kind).toBe('ok');
    if (out.kind === 'ok') {
      expect(out.payload.sub).toBe('alice');
      expect(out.payloadSegment).toBe(token.split('.')[1]);
    }
  });

  it.each([
    ['a bad signature', { iss: ISS }, { with: otherKeyRef }, JWT_STATUS.verificationFails, 'invalid'],
    ['an expired token', { iss: ISS, exp: NOW - 61 }, {}, JWT_STATUS.expired, 'invalid'],
    ['a token not yet valid', { iss: ISS, nbf: NOW + 61 }, {}, JWT_STATUS.notYetValid, 'invalid'],
    ['another issuer', { iss: 'https://evil' }, {}, JWT_STATUS.unknownIssuer, 'unknown_issuer'],
    ['an unknown kid', { iss: ISS }, { kid: 'nope' }, JWT_STATUS.kidAlgMismatch, 'invalid'],
    ['a wrong audience', { iss: ISS, aud: 'other' }, {}, JWT_STATUS.audienceNotAllowed, 'audience'],
    ['a missing audience', { iss: ISS }, {}, JWT_STATUS.audienceNotAllowed, 'audience'],
  ] as const)('rejects %s', async (what, claims, opts, status, code) => {
    const token = await sign(claims, {
      ...('kid' in opts ? { kid: opts.kid } : {}),
      ...('with' in opts ? { with: otherKey } : {}),
    });
    const audiences = code === 'audience' ? ['shop'] : [];
    expect(await verifyToken(token, rule(audiences), source(), NOW), what).toEqual({
      kind: 'error',
      status,
      code,
    });
  });

  it('allows 60 s of clock skew and skips the audience check when none is configured', async () => {
    const token = await sign({ iss: ISS, exp: NOW - 59, aud: 'anything' });
    expect((await verifyToken(token, rule(), source(), NOW)).kind).toBe('ok');
  });

  it('names malformed tokens as jwt_verify_lib does', async () => {
    const v = (t: string) => verifyToken(t, rule(), source(), NOW);
    expect(await v('abc')).toMatchObject({ status: JWT_STATUS.badFormat });
    expect(await v('a*b.c.d')).toMatchObject({ status: JWT_STATUS.headerBadBase64 });
    expect(await v('YWJj.e30.c2ln')).toMatchObject({ status: JWT_STATUS.headerBadJson });
    const h = Buffer.from('{"alg":"none"}').toString('base64url');
    expect(await v(`${h}.e30.c2ln`)).toMatchObject({ status: JWT_STATUS.headerNotImplementedAlg });
  });

  it('refetches keys once on an unknown kid', async () => {
    const token = await sign({ iss: ISS }, { kid: 'k1' });
    let refreshed = 0;
    const empty = createLocalJWKSet({ keys: [] });
    const out = await verifyToken(
      token,
      rule(),
      {
        keys: async () => empty,
        refresh: async () => {
          refreshed++;
          return set;
        },
      },
      NOW,
    );
    expect(out.kind).toBe('ok');
    expect(refreshed).toBe(1);
    const failing = await verifyToken(
      token,
      rule(),
      { keys: async () => Promise.reject(new Error('down')) },
      NOW,
    );
    expect(failing).toMatchObject({ status: JWT_STATUS.jwksFetchFail });
  });

  it('normalizes audiences like Envoy', () => {
    expect(normalizeAudience('https://shop.example/')).toBe('shop.example');
  });
});
