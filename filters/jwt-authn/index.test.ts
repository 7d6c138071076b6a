import { type CryptoKey, exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Snapshot } from '../../config/model.ts';
import type { RequestContext } from '../../src/pipeline/context.ts';
import type { Filter } from '../../src/pipeline/filter.ts';
import { requestAuth } from '../../src/pipeline/request-auth.ts';
import { DEFAULT_HEADER, type JwtRule } from './config.ts';
import { FILTER_NAME, jwtAuthnFactory } from './index.ts';

let key: CryptoKey;
let jwk: JWK;

function rule(issuer: string, extra: Partial<JwtRule> = {}): JwtRule {
  return {
    policy: 'shop/ra',
    issuer,
    audiences: [],
    jwks: JSON.stringify({ keys: [jwk] }),
    jwksUri: undefined,
    timeoutMs: 1000,
    fromHeaders: [DEFAULT_HEADER],
    fromParams: [],
    fromCookies: [],
    outputPayloadToHeader: undefined,
    forwardOriginalToken: false,
    outputClaimToHeaders: [],
    spaceDelimitedClaims: [],
    ...extra,
  };
}

function filterFor(rules: JwtRule[]): Filter {
  const snapshot = { filters: { [FILTER_NAME]: { services: { 'shop/api': rules }, workload: [] } } };
  return jwtAuthnFactory().create(snapshot as unknown as Snapshot)!;
}

function ctxWith(headers: Record<string, string>, method = 'GET'): RequestContext {
  return {
    method,
    path: '/p?q=1',
    authority: 'api.shop:80',
    headers: { ...headers },
    attributes: new Map(),
    explain: [],
    tunnel: { binding: { kind: 'service', service: { namespace: 'shop', name: 'api' } } },
  } as unknown as RequestContext;
}

const sign = (claims: JWTPayload) =>
  new SignJWT({ sub: 'alice', ...claims }).setProtectedHeader({ alg: 'ES256', kid: 'k' }).sign(key);

beforeAll(async () => {
  const pair = await generateKeyPair('ES256');
  key = pair.privateKey;
  jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k' };
});

describe('jwt-authn filter', () => {
  it('is absent when no rule applies', () => {
    const snapshot = { filters: { [FILTER_NAME]: { services: {}, workload: [] } } };
    expect(jwtAuthnFactory().create(snapshot as unknown as Snapshot)).toBeUndefined();
  });

  it('sets the request principal and claims, splitting scope', async () => {
    const f = filterFor([rule('a'), rule('b')]);
    const ctx = ctxWith({
      authorization: `Bearer ${await sign({ iss: 'b', scope: 'read write', azp: 'cli' })}`,
    });
    expect(await f.onRequestHeaders!(ctx)).toEqual({ kind: 'continue' });
    expect(requestAuth(ctx)).toMatchObject({
      principal: 'b/alice',
      issuer: 'b',
      subject: 'alice',
      presenter: 'cli',
      claims: { scope: ['read', 'write'] },
    });
    expect(ctx.headers.authorization).toBeUndefined();
  });

  it('prefers a real failure over an unknown issuer, and reports an unknown issuer alone', async () => {
    const f = filterFor([rule('a'), rule('b', { audiences: ['x'] })]);
    const wrongAud = await f.onRequestHeaders!(
      ctxWith({ authorization: `Bearer ${await sign({ iss: 'b' })}` }),
    );
    expect(wrongAud).toMatchObject({
      kind: 'reply',
      reason: 'jwt_audience_mismatch',
      body: 'Audiences in Jwt are not allowed',
      headers: { 'www-authenticate': 'Bearer realm="http://api.shop:80/p", error="invalid_token"' },
    });
    const unknown = await f.onRequestHeaders!(
      ctxWith({ authorization: `Bearer ${await sign({ iss: 'c' })}` }),
    );
    expect(unknown).toMatchObject({ reason: 'jwt_invalid', body: 'Jwt issuer is not configured' });
  });

  it('passes without identity when no token is present and skips CORS preflights', async () => {
    const f = filterFor([rule('a')]);
    const none = ctxWith({});
    expect(await f.onRequestHeaders!(none)).toEqual({ kind: 'continue' });
    expect(requestAuth(none)).toBeUndefined();
    const preflight = ctxWith(
      { origin: 'http://x', 'access-control-request-method': 'GET', authorization: 'Bearer bad' },
      'OPTIONS',
    );
    expect(await f.onRequestHeaders!(preflight)).toEqual({ kind: 'continue' });
  });
});
