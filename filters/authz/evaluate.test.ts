import { describe, expect, it } from 'vitest';
import { authorizationPolicySchema } from '../../config/kinds/authorization-policy.ts';
import type { Snapshot } from '../../config/model.ts';
import type { Resource } from '../../config/resource.ts';
import type { RequestAuth } from '../../src/pipeline/request-auth.ts';
import { compileAuthz } from './config.ts';
import { evaluate } from './evaluate.ts';
import type { Attributes, AuthzConfig } from './model.ts';

const base = {
  gateway: { ref: { namespace: 'shop', name: 'waypoint' } },
  services: new Map([
    ['127.0.80.10:80', { kind: 'service', service: { namespace: 'shop', name: 'api' }, port: 80 }],
  ]),
} as unknown as Omit<Snapshot, 'filters'>;

function policy(
  name: string,
  spec: unknown,
  extra: { ns?: string; annotations?: Record<string, string> } = {},
) {
  const doc = {
    metadata: {
      name,
      namespace: extra.ns ?? 'shop',
      ...(extra.annotations ? { annotations: extra.annotations } : {}),
    },
    spec: {
      targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint' }],
      ...(spec as object),
    },
  };
  return {
    kind: 'AuthorizationPolicy',
    group: 'security.istio.io',
    version: 'v1',
    namespace: extra.ns ?? 'shop',
    name,
    origin: 'test.yaml',
    spec: authorizationPolicySchema.parse(doc),
  } satisfies Resource;
}

function compile(...resources: Resource[]) {
  const out = compileAuthz(resources, base);
  return { config: out.config as AuthzConfig, messages: out.messages.map((m) => m.message) };
}

function attrs(over: Partial<Attributes> & { headers?: Record<string, string> } = {}): Attributes {
  const headers = over.headers ?? {};
  return {
    peerUri: 'spiffe://cluster.local/ns/shop/sa/sleep',
    sourceIp: '127.0.80.5',
    remoteIp: '127.0.80.5',
    destinationIp: '127.0.80.10',
    destinationPort: 80,
    method: 'GET',
    host: 'api.shop',
    path: '/',
    auth: undefined,
    header: (n) => headers[n],
    ...over,
  };
}

const decide = (config: AuthzConfig, a: Attributes = attrs(), service = true) =>
  evaluate(service ? (config.services.get('shop/api') ?? config.waypoint) : config.waypoint, a);

describe('evaluation order and empty shapes', () => {
  it('no policies allows', () => {
    expect(compile().config.policyCount).toBe(0);
  });
  it('spec: {} denies everything; rules: [{}] allows everything', () => {
    expect(decide(compile(policy('p', {})).config)).toMatchObject({
      allowed: false,
      detail: 'rbac_access_denied_matched_policy[none]',
    });
    expect(decide(compile(policy('p', { rules: [{}] })).config).allowed).toBe(true);
  });
  it('DENY with no rules does nothing; DENY rules: [{}] denies all', () => {
    expect(decide(compile(policy('p', { action: 'DENY' })).config).allowed).toBe(true);
    expect(decide(compile(policy('p', { action: 'DENY', rules: [{}] })).config)).toMatchObject({
      allowed: false,
      detail: 'rbac_access_denied_matched_policy[ns[shop]-policy[p]-rule[0]]',
    });
  });
  it('DENY wins over ALLOW', () => {
    const { config } = compile(
      policy('a', { rules: [{}] }),
      policy('d', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }] }),
    );
    expect(decide(config).allowed).toBe(true);
    expect(decide(config, attrs({ method: 'DELETE' })).detail).toBe(
      'rbac_access_denied_matched_policy[ns[shop]-policy[d]-rule[0]]',
    );
  });
  it('AUDIT never changes the outcome', () => {
    const { config } = compile(policy('au', { action: 'AUDIT', rules: [{}] }));
    const d = decide(config);
    expect(d.allowed).toBe(true);
    expect(d.explain.join('\n')).toContain('AUDIT matched ns[shop]-policy[au]-rule[0]');
  });
  it('dry-run policies are reported, never enforced, never cause the implicit deny', () => {
    const dry = { annotations: { 'istio.io/dry-run': 'true' } };
    const { config } = compile(policy('dd', { action: 'DENY', rules: [{}] }, dry), policy('da', {}, dry));
    const d = decide(config);
    expect(d.allowed).toBe(true);
    expect(d.explain.join('\n')).toMatch(/dry-run DENY: would deny \(ns\[shop\]-policy\[dd\]-rule\[0\]\)/);
    expect(d.explain.join('\n')).toMatch(/dry-run ALLOW: would deny/);
  });
  it('unparsable dry-run annotation warns and enforces', () => {
    const { config, messages } = compile(policy('p', {}, { annotations: { 'istio.io/dry-run': 'yes' } }));
    expect(decide(config).allowed).toBe(false);
    expect(messages.join()).toMatch(/dry-run.*not a boolean/);
  });
  it('CUSTOM without ext_authz denies matching requests (missing provider)', () => {
    const { config, messages } = compile(
      policy('c', {
        action: 'CUSTOM',
        provider: { name: 'ext' },
        rules: [{ to: [{ operation: { paths: ['/admin*'] } }] }],
      }),
    );
    expect(decide(config).allowed).toBe(true);
    expect(decide(config, attrs({ path: '/admin/x' })).allowed).toBe(false);
    expect(messages.join()).toMatch(/ext_authz provider "ext" is not defined in the mesh config/);
  });
});

describe('fields', () => {
  const allow = (rule: unknown) => compile(policy('p', { rules: [rule] })).config;
  it('from ORed, to ORed, when ANDed, fields ANDed', () => {
    const c = allow({
      from: [
        { source: { namespaces: ['other'] } },
        { source: { principals: ['cluster.local/ns/shop/sa/sleep'] } },
      ],
      to: [{ operation: { methods: ['GET'], paths: ['/a'] } }, { operation: { methods: ['POST'] } }],
      when: [
        { key: 'request.headers[X-A]', values: ['1'] },
        { key: 'source.ip', values: ['127.0.80.0/24'] },
      ],
    });
    const h = { 'x-a': '1' };
    expect(decide(c, attrs({ path: '/a', headers: h })).allowed).toBe(true);
    expect(decide(c, attrs({ path: '/b', headers: h })).allowed).toBe(false);
    expect(decide(c, attrs({ method: 'POST', path: '/b', headers: h })).allowed).toBe(true);
    expect(decide(c, attrs({ path: '/a' })).allowed).toBe(false);
    expect(decide(c, attrs({ path: '/a', headers: h, sourceIp: '127.0.81.1' })).allowed).toBe(false);
  });
  it('values AND NOT notValues', () => {
    const c = allow({ to: [{ operation: { paths: ['/api/*'], notPaths: ['/api/admin*'] } }] });
    expect(decide(c, attrs({ path: '/api/x' })).allowed).toBe(true);
    expect(decide(c, attrs({ path: '/api/admin/x' })).allowed).toBe(false);
  });
  it('hosts ignore case and include the port', () => {
    const c = allow({ to: [{ operation: { hosts: ['API.shop'] } }] });
    expect(decide(c, attrs({ host: 'api.SHOP' })).allowed).toBe(true);
    expect(decide(c, attrs({ host: 'api.shop:80' })).allowed).toBe(false);
  });
  it('ports, notPorts and destination.port', () => {
    expect(decide(allow({ to: [{ operation: { ports: ['80'] } }] })).allowed).toBe(true);
    expect(decide(allow({ to: [{ operation: { notPorts: ['80'] } }] })).allowed).toBe(false);
    expect(decide(allow({ when: [{ key: 'destination.port', values: ['81'] }] })).allowed).toBe(false);
  });
  it('requestPrincipals and request.auth.* read requestAuth', () => {
    const auth: RequestAuth = {
      principal: 'https://iss/alice',
      issuer: 'https://iss',
      subject: 'alice',
      audiences: ['a1', 'a2'],
      presenter: 'cli',
      claims: { groups: ['dev', 'ops'], scope: 'read write', nested: { team: 'x' } },
    };
    expect(decide(allow({ from: [{ source: { requestPrincipals: ['*'] } }] })).allowed).toBe(false);
    expect(decide(allow({ from: [{ source: { requestPrincipals: ['*'] } }] }), attrs({ auth })).allowed).toBe(
      true,
    );
    expect(decide(allow({ from: [{ source: { notRequestPrincipals: ['*'] } }] })).allowed).toBe(true);
    const when = (key: string, values: string[]) =>
      decide(allow({ when: [{ key, values }] }), attrs({ auth })).allowed;
    expect(when('request.auth.principal', ['https://iss/alice'])).toBe(true);
    expect(when('request.auth.audiences', ['a2'])).toBe(true);
    expect(when('request.auth.presenter', ['cli'])).toBe(true);
    expect(when('request.auth.claims[groups]', ['ops'])).toBe(true);
    expect(when('request.auth.claims[scope]', ['write'])).toBe(true);
    expect(when('request.auth.claims[nested][team]', ['x'])).toBe(true);
    expect(when('request.auth.claims[groups]', ['qa'])).toBe(false);
  });
});

describe('invalid values', () => {
  it('an invalid ALLOW rule is dropped whole (and an ALLOW with no rules left denies all)', () => {
    const { config, messages } = compile(
      policy('p', { rules: [{ from: [{ source: { ipBlocks: ['bad', '127.0.80.0/24'] } }] }] }),
    );
    expect(decide(config).allowed).toBe(false);
    expect(messages.join()).toMatch(
      /AuthorizationPolicy shop\/p: spec\.rules\[0\]\.from\[0\]\.source\.ipBlocks\[0\]: .*rule dropped/,
    );
  });
  it('an invalid value in a DENY broadens it', () => {
    const { config, messages } = compile(
      policy('d', { action: 'DENY', rules: [{ to: [{ operation: { ports: ['http'] } }] }] }),
    );
    expect(decide(config).allowed).toBe(false);
    expect(messages.join()).toMatch(/ports\[0\]: invalid port "http"; value ignored/);
  });
  it('an unknown when key drops the rule for any action', () => {
    const { config, messages } = compile(
      policy('d', { action: 'DENY', rules: [{ when: [{ key: 'request.bogus', values: ['x'] }] }] }),
    );
    expect(decide(config).allowed).toBe(true);
    expect(messages.join()).toMatch(/unknown condition key "request.bogus"; rule dropped/);
  });
});

describe('attachment', () => {
  it('Service targets apply to that Service only; GatewayClass only from istio-system; selector warns', () => {
    const svc = policy('s', { targetRefs: [{ kind: 'Service', group: '', name: 'api' }] });
    const other = policy('o', { targetRefs: [{ kind: 'Service', name: 'other' }] });
    const cls = policy(
      'c',
      {
        action: 'DENY',
        rules: [{}],
        targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'GatewayClass', name: 'istio-waypoint' }],
      },
      { ns: 'istio-system' },
    );
    const clsWrongNs = policy('c2', {
      action: 'DENY',
      rules: [{}],
      targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'GatewayClass', name: 'istio-waypoint' }],
    });
    const sel = policy('sel', { targetRefs: undefined, selector: { matchLabels: { app: 'api' } } });
    const { config, messages } = compile(svc, other, clsWrongNs, sel);
    expect(decide(config, attrs(), true).allowed).toBe(false); // spec {} on api
    expect(decide(config, attrs(), false).allowed).toBe(true); // not api
    expect(messages.join('\n')).toMatch(/sel: spec.selector: selector policies are enforced by ztunnel/);
    expect(messages.join('\n')).toMatch(
      /c2: spec.targetRefs\[0\]: GatewayClass targets only apply from the root namespace/,
    );
    expect(decide(compile(cls).config, attrs(), false).allowed).toBe(false);
  });
});
