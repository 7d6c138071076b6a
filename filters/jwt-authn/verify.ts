// One token against one rule, in the order of Envoy's jwt_authn (google/jwt_verify_lib): parse,
// issuer, time (60 s clock skew), audience, then key lookup and signature. Failures carry
// jwt_verify_lib's status string, which is the body of Envoy's local reply.
import { compactVerify, errors } from 'jose';
import type { JwtRule } from './config.ts';
import type { KeySet } from './jwks.ts';

/** jwt_verify_lib status strings (src/status.cc) used here. */
export const JWT_STATUS = {
  badFormat: 'Jwt is not in the form of Header.Payload.Signature',
  headerBadBase64: 'Jwt header is an invalid Base64url encoded',
  headerBadJson: 'Jwt header is an invalid JSON',
  headerBadAlg: 'Jwt header [alg] field is required and must be a string',
  headerNotImplementedAlg: 'Jwt header [alg] is not supported',
  headerBadKid: 'Jwt header [kid] field is not a string',
  payloadBadBase64: 'Jwt payload is an invalid Base64url encoded',
  payloadBadJson: 'Jwt payload is an invalid JSON',
  issNotString: 'Jwt payload [iss] field is not a string',
  subNotString: 'Jwt payload [sub] field is not a string',
  iatNotInteger: 'Jwt payload [iat] field is not an integer',
  nbfNotInteger: 'Jwt payload [nbf] field is not an integer',
  expNotInteger: 'Jwt payload [exp] field is not an integer',
  audNotString: 'Jwt payload [aud] field is not a string or string list',
  signatureBadBase64: 'Jwt signature is an invalid Base64url encoded',
  unknownIssuer: 'Jwt issuer is not configured',
  notYetValid: 'Jwt not yet valid',
  expired: 'Jwt is expired',
  audienceNotAllowed: 'Audiences in Jwt are not allowed',
  kidAlgMismatch: "Jwks doesn't have key to match kid or alg from Jwt",
  verificationFails: 'Jwt verification fails',
  jwksFetchFail: 'Jwks remote fetch is failed',
} as const;

/** Envoy's default clock_skew_seconds (Istio does not set it). */
export const CLOCK_SKEW_SECONDS = 60;

const ALGORITHMS = new Set([
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'HS256',
  'HS384',
  'HS512',
  'EdDSA',
  'Ed25519',
]);

const BASE64URL = /^[A-Za-z0-9_-]*$/;

export type VerifyOutcome =
  | {
      readonly kind: 'ok';
      readonly payload: Readonly<Record<string, unknown>>;
      /** The token's payload segment (base64url of the JSON payload), for outputPayloadToHeader. */
      readonly payloadSegment: string;
    }
  | {
      readonly kind: 'error';
      /** jwt_verify_lib status string. */
      readonly status: string;
      /** unknown_issuer: another rule may own the token; audience: 403 rather than 401. */
      readonly code: 'unknown_issuer' | 'audience' | 'invalid';
    };

/** Where a rule's keys come from: the set now, and a fresh one after an unknown kid (if allowed). */
export interface KeySource {
  keys(): Promise<KeySet>;
  refresh?(): Promise<KeySet | undefined>;
}

function fail(status: string, code: 'unknown_issuer' | 'audience' | 'invalid' = 'invalid'): VerifyOutcome {
  return { kind: 'error', status, code };
}

function decodeJson(segment: string): { ok: true; value: unknown } | { ok: false; base64: boolean } {
  if (!BASE64URL.test(segment) || segment.length % 4 === 1) return { ok: false, base64: true };
  try {
    return { ok: true, value: JSON.parse(Buffer.from(segment, 'base64url').toString('utf8')) };
  } catch {
    return { ok: false, base64: false };
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Envoy compares audiences without a scheme and trailing slash (jwt_verify_lib CheckAudience). */
export function normalizeAudience(aud: string): string {
  let a = aud;
  if (a.startsWith('http://')) a = a.slice(7);
  else if (a.startsWith('https://')) a = a.slice(8);
  while (a.endsWith('/')) a = a.slice(0, -1);
  return a;
}

/** `aud` as a list (a string is a one-element list). */
export function audiencesOf(payload: Readonly<Record<string, unknown>>): string[] {
  const aud = payload.aud;
  if (typeof aud === 'string') return [aud];
  if (Array.isArray(aud)) return aud.filter((a): a is string => typeof a === 'string');
  return [];
}

const isInteger = (v: unknown): boolean => v === undefined || (typeof v === 'number' && Number.isFinite(v));

type SignatureResult = 'ok' | 'no_key' | 'fail';

async function checkSignature(token: string, set: KeySet): Promise<SignatureResult> {
  try {
    await compactVerify(token, set);
    return 'ok';
  } catch (err) {
    if (err instanceof errors.JWKSMultipleMatchingKeys) {
      for await (const key of err) {
        try {
          await compactVerify(token, key);
          return 'ok';
        } catch {}
      }
      return 'fail';
    }
    if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JOSENotSupported) return 'no_key';
    return 'fail';
  }
}

export async function verifyToken(
  token: string,
  rule: Pick<JwtRule, 'issuer' | 'audiences'>,
  source: KeySource,
  nowSeconds: number,
): Promise<VerifyOutcome> {
  const parsed = parseToken(token);
  if (parsed.kind === 'error') return parsed;
  const { payload } = parsed;
  if (payload.iss !== rule.issuer) return fail(JWT_STATUS.unknownIssuer, 'unknown_issuer');
  const nbf = payload.nbf as number | undefined;
  const exp = payload.exp as number | undefined;
  if (nbf !== undefined && nbf > nowSeconds + CLOCK_SKEW_SECONDS) return fail(JWT_STATUS.notYetValid);
  if (exp !== undefined && nowSeconds > exp + CLOCK_SKEW_SECONDS) return fail(JWT_STATUS.expired);
  if (rule.audiences.length > 0) {
    const allowed = new Set(rule.audiences.map(normalizeAudience));
    if (!audiencesOf(payload).some((a) => allowed.has(normalizeAudience(a)))) {
      return fail(JWT_STATUS.audienceNotAllowed, 'audience');
    }
  }
  let result: SignatureResult;
  try {
    result = await checkSignature(token, await source.keys());
    if (result === 'no_key' && source.refresh) {
      const fresh = await source.refresh();
      if (fresh) result = await checkSignature(token, fresh);
    }
  } catch {
    return fail(JWT_STATUS.jwksFetchFail);
  }
  if (result === 'no_key') return fail(JWT_STATUS.kidAlgMismatch);
  if (result === 'fail') return fail(JWT_STATUS.verificationFails);
  return parsed;
}

/** The token's shape, in jwt_verify_lib's order of checks: header, payload, signature encoding. */
function parseToken(token: string): VerifyOutcome {
  const parts = token.split('.');
  if (parts.length !== 3) return fail(JWT_STATUS.badFormat);
  const [h, p, s] = parts as [string, string, string];
  const header = decodeJson(h);
  if (!header.ok) return fail(header.base64 ? JWT_STATUS.headerBadBase64 : JWT_STATUS.headerBadJson);
  if (!isObject(header.value)) return fail(JWT_STATUS.headerBadJson);
  const alg = header.value.alg;
  if (typeof alg !== 'string') return fail(JWT_STATUS.headerBadAlg);
  if (!ALGORITHMS.has(alg)) return fail(JWT_STATUS.headerNotImplementedAlg);
  if (header.value.kid !== undefined && typeof header.value.kid !== 'string') {
    return fail(JWT_STATUS.headerBadKid);
  }
  const body = decodeJson(p);
  if (!body.ok) return fail(body.base64 ? JWT_STATUS.payloadBadBase64 : JWT_STATUS.payloadBadJson);
  if (!isObject(body.value)) return fail(JWT_STATUS.payloadBadJson);
  const bad = payloadTypeError(body.value);
  if (bad) return fail(bad);
  if (!BASE64URL.test(s) || s.length === 0) return fail(JWT_STATUS.signatureBadBase64);
  return { kind: 'ok', payload: body.value, payloadSegment: p };
}

/** The status for a registered claim of the wrong type, if one is. */
function payloadTypeError(payload: Readonly<Record<string, unknown>>): string | undefined {
  if (payload.iss !== undefined && typeof payload.iss !== 'string') return JWT_STATUS.issNotString;
  if (payload.sub !== undefined && typeof payload.sub !== 'string') return JWT_STATUS.subNotString;
  if (!isInteger(payload.iat)) return JWT_STATUS.iatNotInteger;
  if (!isInteger(payload.nbf)) return JWT_STATUS.nbfNotInteger;
  if (!isInteger(payload.exp)) return JWT_STATUS.expNotInteger;
  const aud = payload.aud;
  if (
    aud !== undefined &&
    typeof aud !== 'string' &&
    !(Array.isArray(aud) && aud.every((a) => typeof a === 'string'))
  )
    return JWT_STATUS.audNotString;
  return undefined;
}
