import { describe, expect, it } from 'vitest';
import type { RequestContext } from '../../src/pipeline/context.ts';
import { testContext } from '../../src/upstream/test-support.ts';
import type { CorsPolicy, ValueMatch } from '../routing/index.ts';
import { createCorsFilter } from './index.ts';

const exact = (value: string): ValueMatch => ({ type: 'Exact', value, ignoreCase: false, regex: undefined });

const POLICY: CorsPolicy = {
  allowOrigins: [exact('https://shop.example')],
  allowMethods: ['GET', 'POST'],
  allowHeaders: ['x-token', 'content-type'],
  exposeHeaders: ['x-trace'],
  maxAgeSeconds: 600,
  allowCredentials: true,
  unmatchedPreflights: 'FORWARD',
};

function ctx(method: string, headers: Record<string, string>): RequestContext {
  return { ...testContext({ headers }), method } as RequestContext;
}

const preflight = (origin: string) => ctx('OPTIONS', { origin, 'access-control-request-method': 'POST' });

describe('cors filter', () => {
  it('answers an allowed preflight with the policy', () => {
    const filter = createCorsFilter(() => POLICY);
    expect(filter.onRequestHeaders!(preflight('https://shop.example'))).toEqual({
      kind: 'reply',
      reason: 'cors_preflight',
      headers: {
        'access-control-allow-origin': 'https://shop.example',
        'access-control-allow-credentials': 'true',
        'access-control-allow-methods': 'GET,POST',
        'access-control-allow-headers': 'x-token,content-type',
        'access-control-max-age': '600',
      },
      detail: 'https://shop.example',
    });
  });

  it('forwards a preflight from another origin, or answers it bare with IGNORE', () => {
    expect(createCorsFilter(() => POLICY).onRequestHeaders!(preflight('https://evil.example'))).toEqual({
      kind: 'continue',
    });
    const ignore = createCorsFilter(() => ({ ...POLICY, unmatchedPreflights: 'IGNORE' }));
    const v = ignore.onRequestHeaders!(preflight('https://evil.example'));
    expect(v).toEqual({ kind: 'reply', reason: 'cors_preflight', detail: 'https://evil.example' });
  });

  it('treats OPTIONS without access-control-request-method as an actual request', () => {
    const filter = createCorsFilter(() => POLICY);
    const c = ctx('OPTIONS', { origin: 'https://shop.example' });
    expect(filter.onRequestHeaders!(c)).toEqual({ kind: 'continue' });
    const head = { status: 200, headers: {} };
    filter.onResponseHeaders!(c, head);
    expect(head.headers).toMatchObject({ 'access-control-allow-origin': 'https://shop.example' });
  });

  it('adds allow-origin, credentials and expose-headers to an allowed actual request', () => {
    const filter = createCorsFilter(() => POLICY);
    const c = ctx('GET', { origin: 'https://shop.example' });
    expect(filter.onRequestHeaders!(c)).toEqual({ kind: 'continue' });
    const head = { status: 200, headers: {} };
    filter.onResponseHeaders!(c, head);
    expect(head.headers).toEqual({
      'access-control-allow-origin': 'https://shop.example',
      'access-control-allow-credentials': 'true',
      'access-control-expose-headers': 'x-trace',
    });
  });

  it('adds nothing for a disallowed origin, no origin, or no policy', () => {
    for (const [policy, headers] of [
      [POLICY, { origin: 'https://evil.example' }],
      [POLICY, {}],
      [undefined, { origin: 'https://shop.example' }],
    ] as const) {
      const filter = createCorsFilter(() => policy);
      const c = ctx('GET', headers);
      expect(filter.onRequestHeaders!(c)).toEqual({ kind: 'continue' });
      const head = { status: 200, headers: {} };
      filter.onResponseHeaders!(c, head);
      expect(head.headers).toEqual({});
    }
  });

  it('allows any origin for a presence match (Gateway API "*") and echoes it', () => {
    const filter = createCorsFilter(() => ({
      ...POLICY,
      allowOrigins: [{ type: 'Present', value: '', ignoreCase: false, regex: undefined }],
      allowCredentials: false,
      maxAgeSeconds: undefined,
    }));
    expect(filter.onRequestHeaders!(preflight('https://any.example'))).toMatchObject({
      headers: { 'access-control-allow-origin': 'https://any.example' },
    });
  });
});
