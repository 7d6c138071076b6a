// RequestAuthentication through a real waypoint: tokens verified against a JWKS served over HTTP
// (fetched once, cached, refetched for a new kid), Envoy's 401/403 replies, and what the upstream
// sees (payload and claim headers, the token removed unless forwardOriginalToken).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';
import type { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jwtAuthnFactory } from '../../filters/jwt-authn/index.ts';
import { JwksCache } from '../../filters/jwt-authn/jwks.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const WAYPOINT_IP = '127.0.100.2';
const VIP = '127.0.100.10';
const POD = '127.0.101.1';
const JWKS_IP = '127.0.102.1';
const ISS = 'https://issuer.test';
const FWD_ISS = 'https://forward.test';
const COOLDOWN_MS = 300;

let mesh: TestMesh;
let waypoint: Waypoint;
let pool: Pool;
let jwksUri: string;
const cache = new JwksCache({ cooldownMs: COOLDOWN_MS });
const served: JWK[] = [];
let jwksRequests = 0;
const keys: Record<string, CryptoKey> = {};

async function addKey(kid: string): Promise<JWK> {
  const pair = await generateKeyPair('RS256');
  keys[kid] = pair.privateKey;
  return { ...(await exportJWK(pair.publicKey)), kid, alg: 'RS256', use: 'sig' };
}

function sign(claims: JWTPayload, kid = 'k1', iss = ISS): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss, sub: 'alice', aud: 'shop', iat: now, exp: now + 600, ...claims })
    .setProtectedHeader({ alg: 'RS256', kid })
    .sign(keys[kid]!);
}

async function get(headers: Record<string, string> = {}, path = '/items?x=1') {
  const res = await pool.request({ method: 'GET', path, headers });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text };
}

beforeAll(async () => {
  served.push(await addKey('k1'));
  const fwdJwk = await addKey('fwd');
  const jwksServer = http.createServer((_req, res) => {
    jwksRequests++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: served }));
  });
  await new Promise<void>((r) => jwksServer.listen(0, JWKS_IP, () => r()));
  jwksUri = `http://${JWKS_IP}:${(jwksServer.address() as AddressInfo).port}/jwks`;

  mesh = await TestMesh.create();
  mesh.onClose(() => new Promise<void>((r) => jwksServer.close(() => r())));
  await mesh.writeConfig(
    'mesh.yaml',
    [
      waypointYaml(),
      serviceYaml({ name: 'api', vip: VIP, port: 8080, pods: [{ name: 'api-a', ip: POD }] }),
      `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: on-waypoint
  namespace: shop
spec:
  targetRefs:
    - group: gateway.networking.k8s.io
      kind: Gateway
      name: waypoint
  jwtRules:
    - issuer: ${ISS}
      jwksUri: ${jwksUri}
      audiences: [shop]
      outputPayloadToHeader: x-jwt-payload
      outputClaimToHeaders:
        - header: x-jwt-sub
          claim: sub
        - header: x-jwt-team
          claim: org.team
`,
      `apiVersion: security.istio.io/v1beta1
kind: RequestAuthentication
metadata:
  name: on-service
  namespace: shop
spec:
  targetRefs:
    - kind: Service
      name: api
  jwtRules:
    - issuer: ${FWD_ISS}
      jwks: '${JSON.stringify({ keys: [fwdJwk] })}'
      fromHeaders:
        - name: x-fwd-token
      forwardOriginalToken: true
`,
    ].join('---\n'),
  );
  await mesh.pod(POD, 8080, TestMesh.echoServer('api-a'), id('shop', 'api'));
  waypoint = await mesh.startWaypoint({
    factories: [jwtAuthnFactory({ cache })],
    ip: WAYPOINT_IP,
  });
  const client = await mesh.hboneClient(id('shop', 'sleep'));
  pool = mesh.httpPool(client, waypoint.addresses!.hbone, { ip: VIP, port: 8080 });
});
afterAll(() => mesh.close());

describe('RequestAuthentication at the waypoint', () => {
  it('compiles both policies for the Service', () => {
    expect(waypoint.snapshot?.messages.filter((m) => m.kind === 'RequestAuthentication')).toEqual([]);
  });

  it('passes a request without a token, without identity headers', async () => {
    const res = await get({ 'x-jwt-sub': 'spoofed' });
    expect(res.status).toBe(200);
    const seen = JSON.parse(res.text).headers;
    expect(seen['x-jwt-sub']).toBeUndefined();
    expect(seen['x-jwt-payload']).toBeUndefined();
  });

  it('verifies a good token: payload and claim headers upstream, the token removed', async () => {
    const token = await sign({ org: { team: 'blue' } });
    const res = await get({ authorization: `Bearer ${token}` });
    expect(res.status).toBe(200);
    const seen = JSON.parse(res.text).headers;
    expect(seen.authorization).toBeUndefined();
    expect(seen['x-jwt-sub']).toBe('alice');
    expect(seen['x-jwt-team']).toBe('blue');
    expect(JSON.parse(Buffer.from(seen['x-jwt-payload'], 'base64url').toString())).toMatchObject({
      iss: ISS,
      sub: 'alice',
      org: { team: 'blue' },
    });
    // The access_token parameter is the other default location.
    expect((await get({}, `/?access_token=${token}`)).status).toBe(200);
  });

  it('forwards the original token when forwardOriginalToken is set', async () => {
    const token = await sign({ sub: 'bob' }, 'fwd', FWD_ISS);
    const res = await get({ 'x-fwd-token': token });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text).headers['x-fwd-token']).toBe(token);
  });

  it('answers an expired token with 401, the status string and www-authenticate', async () => {
    const now = Math.floor(Date.now() / 1000);
    const res = await get({ authorization: `Bearer ${await sign({ iat: now - 7200, exp: now - 3600 })}` });
    expect(res.status).toBe(401);
    expect(res.text).toBe('Jwt is expired');
    expect(res.headers['www-authenticate']).toBe(
      `Bearer realm="http://${VIP}:8080/items", error="invalid_token"`,
    );
    expect(res.headers['x-waypoint-reason']).toBe('jwt_invalid');
  });

  it('answers a bad signature, an unknown issuer and garbage with 401', async () => {
    const good = await sign({});
    const [h, p] = good.split('.');
    const forged = `${h}.${p}.${Buffer.from('x'.repeat(256)).toString('base64url')}`;
    expect(await get({ authorization: `Bearer ${forged}` })).toMatchObject({
      status: 401,
      text: 'Jwt verification fails',
    });
    expect(
      await get({ authorization: `Bearer ${await sign({}, 'k1', 'https://other.test')}` }),
    ).toMatchObject({
      status: 401,
      text: 'Jwt issuer is not configured',
    });
    expect(await get({ authorization: 'Bearer not-a-jwt' })).toMatchObject({
      status: 401,
      text: 'Jwt is not in the form of Header.Payload.Signature',
    });
  });

  it('answers a wrong audience with 403', async () => {
    const res = await get({ authorization: `Bearer ${await sign({ aud: 'elsewhere' })}` });
    expect(res.status).toBe(403);
    expect(res.text).toBe('Audiences in Jwt are not allowed');
    expect(res.headers['x-waypoint-reason']).toBe('jwt_audience_mismatch');
    expect(res.headers['www-authenticate']).toMatch(/^Bearer realm=".*", error="invalid_token"$/);
  });

  it('fetched the JWKS once and refetches (rate-limited) for a new kid', async () => {
    expect(jwksRequests).toBe(1);
    expect(cache.fetchCount(jwksUri)).toBe(1);
    // A kid the server does not have: one refetch, then the cooldown holds further ones back.
    await addKey('ghost');
    await new Promise((r) => setTimeout(r, COOLDOWN_MS + 50));
    const ghost = await sign({}, 'ghost');
    expect(await get({ authorization: `Bearer ${ghost}` })).toMatchObject({
      status: 401,
      text: "Jwks doesn't have key to match kid or alg from Jwt",
    });
    expect(jwksRequests).toBe(2);
    expect((await get({ authorization: `Bearer ${ghost}` })).status).toBe(401);
    expect(jwksRequests).toBe(2);
    // The issuer rotates in k2: after the cooldown, the first k2 token refetches and passes.
    served.push(await addKey('k2'));
    await new Promise((r) => setTimeout(r, COOLDOWN_MS + 50));
    expect((await get({ authorization: `Bearer ${await sign({}, 'k2')}` })).status).toBe(200);
    expect(jwksRequests).toBe(3);
    expect((await get({ authorization: `Bearer ${await sign({}, 'k2')}` })).status).toBe(200);
    expect((await get({ authorization: `Bearer ${await sign({}, 'k1')}` })).status).toBe(200);
    expect(jwksRequests).toBe(3);
  });
});
