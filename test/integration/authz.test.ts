// AuthorizationPolicy through a real waypoint (l7-semantics.md §2): one Service per case, each with
// its own policy attached by targetRefs, requests from chosen source identities, expected statuses.
// Addresses: waypoint 127.0.80.2, VIPs 127.0.81.N:8080, pods 127.0.82.N:8080.
import type { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HboneClient } from '../../src/hbone/client.ts';
import type { Waypoint } from '../../src/waypoint.ts';
import { id, serviceYaml, TestMesh, waypointYaml } from '../helpers/mesh.ts';

const WAYPOINT_IP = '127.0.80.2';
const SLEEP = 'spiffe://cluster.local/ns/bank-of-anthos/sa/sleep';
const SHOP_SLEEP = id('shop', 'sleep');
const OTHER = id('other', 'client');

interface Req {
  readonly as?: string;
  readonly method?: string;
  readonly path?: string;
  readonly headers?: Record<string, string>;
  readonly status: number;
  /** The path the backend must see (normalization). */
  readonly upstreamPath?: string;
}

interface Case {
  readonly name: string;
  /** The policy's spec without targetRefs (added: Service <name>); undefined for no policy. */
  readonly spec?: string;
  /** Replaces the whole policy document (metadata and spec). */
  readonly doc?: (service: string, vip: string) => string;
  readonly requests: readonly Req[];
}

const policyYaml = (
  name: string,
  service: string,
  spec: string,
  annotations = '',
): string => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ${name}
  namespace: shop${annotations}
spec:
  targetRefs:
    - kind: Service
      group: ""
      name: ${service}
${spec}`;

const CASES: readonly Case[] = [
  {
    name: 'frontend',
    doc: (svc) =>
      policyYaml(
        'frontend-viewer',
        svc,
        `  action: ALLOW
  rules:
    - from:
        - source:
            principals: ["cluster.local/ns/bank-of-anthos/sa/sleep"]
      to:
        - operation:
            methods: ["GET"]
`,
      ),
    requests: [
      { as: SLEEP, method: 'GET', status: 200 },
      { as: SLEEP, method: 'DELETE', status: 403 },
      { as: OTHER, method: 'GET', status: 403 },
    ],
  },
  { name: 'nopolicy', requests: [{ status: 200 }, { method: 'DELETE', status: 200 }] },
  { name: 'spec-empty', spec: '', requests: [{ status: 403 }, { as: OTHER, status: 403 }] },
  { name: 'rules-empty-list', spec: '  rules: []\n', requests: [{ status: 403 }] },
  {
    name: 'rule-empty',
    spec: '  rules: [{}]\n',
    requests: [{ status: 200 }, { method: 'PUT', status: 200 }],
  },
  { name: 'deny-no-rules', spec: '  action: DENY\n', requests: [{ status: 200 }] },
  { name: 'deny-all', spec: '  action: DENY\n  rules: [{}]\n', requests: [{ status: 403 }] },
  { name: 'audit-all', spec: '  action: AUDIT\n  rules: [{}]\n', requests: [{ status: 200 }] },
  {
    name: 'principals',
    spec: '  rules:\n    - from: [{source: {principals: ["cluster.local/ns/shop/*"], notPrincipals: ["*/sa/blocked"]}}]\n',
    requests: [
      { as: SHOP_SLEEP, status: 200 },
      { as: id('shop', 'blocked'), status: 403 },
      { as: OTHER, status: 403 },
    ],
  },
  {
    name: 'namespaces',
    spec: '  rules:\n    - from: [{source: {namespaces: ["sh*"], notNamespaces: ["shh"]}}]\n',
    requests: [
      { as: SHOP_SLEEP, status: 200 },
      { as: id('shh', 'x'), status: 403 },
      { as: OTHER, status: 403 },
    ],
  },
  {
    name: 'service-accounts',
    spec: '  rules:\n    - from: [{source: {serviceAccounts: ["sleep", "other/client"]}}]\n',
    requests: [
      { as: SHOP_SLEEP, status: 200 },
      { as: OTHER, status: 200 },
      { as: id('other', 'sleep'), status: 403 },
    ],
  },
  {
    name: 'not-service-accounts',
    spec: '  rules:\n    - from: [{source: {notServiceAccounts: ["shop/sleep"]}}]\n',
    requests: [
      { as: SHOP_SLEEP, status: 403 },
      { as: OTHER, status: 200 },
    ],
  },
  {
    // The source address is the client's, from the tunnel (the test ztunnel says 127.0.0.50).
    name: 'ip-blocks',
    spec: '  rules:\n    - from: [{source: {ipBlocks: ["127.0.0.0/24"], notIpBlocks: ["127.0.0.51"]}}]\n',
    requests: [{ status: 200 }],
  },
  {
    name: 'not-ip-blocks',
    spec: '  rules:\n    - from: [{source: {notIpBlocks: ["127.0.0.50/32"]}}]\n',
    requests: [{ status: 403 }],
  },
  {
    name: 'remote-ip-blocks',
    spec: '  rules:\n    - from: [{source: {remoteIpBlocks: ["127.0.0.50"], notRemoteIpBlocks: ["10.0.0.0/8"]}}]\n',
    requests: [{ status: 200 }, { headers: { 'x-forwarded-for': '10.1.1.1' }, status: 200 }],
  },
  {
    name: 'request-principals',
    spec: '  rules:\n    - from: [{source: {requestPrincipals: ["*"]}}]\n',
    requests: [{ status: 403 }],
  },
  {
    name: 'not-request-principals',
    spec: '  rules:\n    - from: [{source: {notRequestPrincipals: ["*"]}}]\n',
    requests: [{ status: 200 }],
  },
  {
    // The authority the test client sends is VIP:port; hosts are case-insensitive and include it.
    name: 'hosts',
    doc: (svc, vip) =>
      policyYaml(svc, svc, `  rules:\n    - to: [{operation: {hosts: ["${vip}:*"], notHosts: ["*:81"]}}]\n`),
    requests: [{ status: 200 }, { headers: { host: 'API.Example:8080' }, status: 403 }],
  },
  {
    name: 'hosts-without-port',
    doc: (svc, vip) =>
      policyYaml(svc, svc, `  rules:\n    - to: [{operation: {hosts: ["${vip}", "api.example:8080"]}}]\n`),
    requests: [{ status: 403 }, { headers: { host: 'API.example:8080' }, status: 200 }],
  },
  {
    name: 'ports',
    spec: '  rules:\n    - to: [{operation: {ports: ["8080"]}}]\n',
    requests: [{ status: 200 }],
  },
  {
    name: 'not-ports',
    spec: '  rules:\n    - to: [{operation: {notPorts: ["8080"]}}]\n',
    requests: [{ status: 403 }],
  },
  {
    name: 'methods',
    spec: '  rules:\n    - to: [{operation: {methods: ["G*", "*ST"], notMethods: ["POST"]}}]\n',
    requests: [
      { method: 'GET', status: 200 },
      { method: 'POST', status: 403 },
      { method: 'PUT', status: 403 },
    ],
  },
  {
    name: 'paths',
    spec: '  rules:\n    - to: [{operation: {paths: ["/api/*", "*.png", "/exact"], notPaths: ["/api/admin*"]}}]\n',
    requests: [
      { path: '/api/x?q=/admin', status: 200 },
      { path: '/img/a.png', status: 200 },
      { path: '/exact?x=1', status: 200 },
      { path: '/exact/', status: 403 },
      { path: '/api/admin/users', status: 403 },
      { path: '/other', status: 403 },
    ],
  },
  {
    name: 'path-templates',
    spec: '  rules:\n    - to: [{operation: {paths: ["/foo/{*}", "/bar/{**}/"]}}]\n',
    requests: [
      { path: '/foo/x', status: 200 },
      { path: '/foo/x/y', status: 403 },
      { path: '/bar/a/b.txt', status: 200 },
      { path: '/bar/a', status: 403 },
    ],
  },
  {
    // BASE normalization applies before matching and is what goes upstream.
    name: 'normalization',
    spec: '  action: DENY\n  rules:\n    - to: [{operation: {paths: ["/admin*"]}}]\n',
    requests: [
      { path: '/public/%2e%2e/admin', status: 403 },
      { path: '/public/..%5cadmin', status: 200, upstreamPath: '/public/..%5cadmin' },
      { path: '/x/./y/../%7Ez?a=/../b', status: 200, upstreamPath: '/x/~z?a=/../b' },
      { path: '/a\\b', status: 200, upstreamPath: '/a/b' },
      { path: '/a//b', status: 200, upstreamPath: '/a//b' },
      { path: '/a%00b', status: 400 },
    ],
  },
  {
    name: 'when-headers',
    spec: '  rules:\n    - when:\n        - key: request.headers[X-Team]\n          values: ["dev*"]\n          notValues: ["devil"]\n        - key: request.headers[x-present]\n          values: ["*"]\n',
    requests: [
      { headers: { 'x-team': 'devops', 'x-present': 'yes' }, status: 200 },
      { headers: { 'x-team': 'devil', 'x-present': 'yes' }, status: 403 },
      { headers: { 'x-team': 'devops' }, status: 403 },
    ],
  },
  {
    name: 'when-source',
    spec: '  rules:\n    - when:\n        - key: source.namespace\n          values: ["shop"]\n        - key: source.principal\n          notValues: ["cluster.local/ns/shop/sa/blocked"]\n        - key: source.ip\n          values: ["127.0.0.50/32"]\n        - key: remote.ip\n          values: ["127.0.0.0/8"]\n',
    requests: [
      { as: SHOP_SLEEP, status: 200 },
      { as: id('shop', 'blocked'), status: 403 },
      { as: OTHER, status: 403 },
    ],
  },
  {
    name: 'when-destination',
    spec: '  rules:\n    - when:\n        - key: destination.port\n          values: ["8080"]\n        - key: destination.ip\n          values: ["127.0.81.0/24"]\n',
    requests: [{ status: 200 }],
  },
  {
    name: 'when-auth',
    spec: '  rules:\n    - when:\n        - key: request.auth.claims[groups]\n          values: ["admin"]\n',
    requests: [{ status: 403 }],
  },
  {
    name: 'invalid-allow-dropped',
    spec: '  rules:\n    - from: [{source: {ipBlocks: ["not-a-cidr"]}}]\n    - to: [{operation: {methods: ["POST"]}}]\n',
    requests: [
      { method: 'GET', status: 403 },
      { method: 'POST', status: 200 },
    ],
  },
  {
    name: 'invalid-deny-broadened',
    spec: '  action: DENY\n  rules:\n    - to: [{operation: {ports: ["http"], methods: ["DELETE"]}}]\n',
    requests: [
      { method: 'GET', status: 200 },
      { method: 'DELETE', status: 403 },
    ],
  },
  {
    name: 'deny-beats-allow',
    doc: (svc) =>
      [
        policyYaml('allow-shop', svc, '  rules:\n    - from: [{source: {namespaces: ["shop"]}}]\n'),
        policyYaml(
          'deny-admin',
          svc,
          '  action: DENY\n  rules:\n    - to: [{operation: {paths: ["/admin*"]}}]\n',
        ),
      ].join('---\n'),
    requests: [
      { as: SHOP_SLEEP, path: '/admin', status: 403 },
      { as: SHOP_SLEEP, path: '/home', status: 200 },
      { as: OTHER, path: '/home', status: 403 },
    ],
  },
  {
    name: 'dry-run',
    doc: (svc) =>
      [
        policyYaml(
          'dry-deny',
          svc,
          '  action: DENY\n  rules: [{}]\n',
          '\n  annotations:\n    istio.io/dry-run: "true"',
        ),
        policyYaml('dry-allow', svc, '', '\n  annotations:\n    istio.io/dry-run: "true"'),
      ].join('---\n'),
    requests: [{ status: 200 }],
  },
  {
    name: 'selector-ignored',
    doc: () => `apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata:
  name: selector-ignored
  namespace: shop
spec:
  selector:
    matchLabels:
      app: selector-ignored
`,
    requests: [{ status: 200 }],
  },
];

/** Policies that attach to every destination: on the Gateway, and on the GatewayClass. */
const WAYPOINT_WIDE = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: gateway-deny-header
  namespace: shop
spec:
  targetRefs:
    - group: gateway.networking.k8s.io
      kind: Gateway
      name: waypoint
  action: DENY
  rules:
    - when: [{key: "request.headers[x-gateway-deny]", values: ["*"]}]
---
apiVersion: v1
kind: Namespace
metadata:
  name: istio-system
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: class-deny-header
  namespace: istio-system
spec:
  targetRefs:
    - group: gateway.networking.k8s.io
      kind: GatewayClass
      name: istio-waypoint
  action: DENY
  rules:
    - when: [{key: "request.headers[x-class-deny]", values: ["*"]}]
`;

let mesh: TestMesh;
let waypoint: Waypoint;
const clients = new Map<string, HboneClient>();
const pools = new Map<string, Pool>();
const vipOf = (i: number) => `127.0.81.${10 + i}`;

async function pool(identity: string, caseIndex: number): Promise<Pool> {
  const key = `${identity} ${caseIndex}`;
  let p = pools.get(key);
  if (!p) {
    let client = clients.get(identity);
    if (!client) {
      client = await mesh.hboneClient(identity);
      clients.set(identity, client);
    }
    p = mesh.httpPool(client, waypoint.addresses!.hbone, { ip: vipOf(caseIndex), port: 8080 });
    pools.set(key, p);
  }
  return p;
}

beforeAll(async () => {
  mesh = await TestMesh.create();
  const docs = [waypointYaml(), WAYPOINT_WIDE];
  for (const [i, c] of CASES.entries()) {
    docs.push(
      serviceYaml({
        name: c.name,
        vip: vipOf(i),
        port: 8080,
        pods: [{ name: `${c.name}-a`, ip: `127.0.82.${10 + i}` }],
      }),
    );
    if (c.doc) docs.push(c.doc(c.name, vipOf(i)));
    else if (c.spec !== undefined) docs.push(policyYaml(c.name, c.name, c.spec));
  }
  await mesh.writeConfig('mesh.yaml', docs.join('---\n'));
  for (const [i, c] of CASES.entries()) {
    await mesh.pod(`127.0.82.${10 + i}`, 8080, TestMesh.echoServer(`${c.name}-a`), id('shop', c.name));
  }
  waypoint = await mesh.startWaypoint({
    ip: WAYPOINT_IP,
  });
});
afterAll(() => mesh.close());

async function send(caseIndex: number, r: Req) {
  const p = await pool(r.as ?? SHOP_SLEEP, caseIndex);
  const res = await p.request({
    method: (r.method ?? 'GET') as 'GET',
    path: r.path ?? '/',
    headers: r.headers ?? {},
  });
  const body = await res.body.text();
  return { status: res.statusCode, body, headers: res.headers };
}

describe('AuthorizationPolicy at the waypoint', () => {
  const rows = CASES.flatMap((c, i) =>
    c.requests.map((r) => ({
      label: `${c.name}: ${r.method ?? 'GET'} ${r.path ?? '/'} as ${(r.as ?? SHOP_SLEEP).replace('spiffe://cluster.local/', '')}${r.headers ? ` ${JSON.stringify(r.headers)}` : ''} → ${r.status}`,
      i,
      r,
    })),
  );
  it.each(rows)('$label', async ({ i, r }) => {
    const res = await send(i, r);
    expect(res.status).toBe(r.status);
    if (r.status === 403) {
      expect(res.body).toBe('RBAC: access denied');
      expect(res.headers['x-waypoint-reason']).toBe('authz_denied');
    }
    if (r.upstreamPath !== undefined) expect(JSON.parse(res.body).path).toBe(r.upstreamPath);
  });

  it('applies Gateway and GatewayClass (root namespace) policies to every Service', async () => {
    const open = CASES.findIndex((c) => c.name === 'nopolicy');
    expect((await send(open, { headers: { 'x-gateway-deny': '1' }, status: 403 })).status).toBe(403);
    expect((await send(open, { headers: { 'x-class-deny': '1' }, status: 403 })).status).toBe(403);
    const frontend = CASES.findIndex((c) => c.name === 'frontend');
    expect((await send(frontend, { as: SLEEP, headers: { 'x-gateway-deny': '' }, status: 403 })).status).toBe(
      403,
    );
  });

  it('reports the selector policy and the invalid values as snapshot warnings', () => {
    const messages = waypoint.snapshot!.messages.map((m) => m.message).join('\n');
    expect(messages).toMatch(
      /AuthorizationPolicy shop\/selector-ignored: spec\.selector: selector policies are enforced by ztunnel/,
    );
    expect(messages).toMatch(
      /AuthorizationPolicy shop\/invalid-allow-dropped: spec\.rules\[0\]\.from\[0\]\.source\.ipBlocks\[0\]: .*rule dropped/,
    );
    expect(messages).toMatch(
      /AuthorizationPolicy shop\/invalid-deny-broadened: spec\.rules\[0\]\.to\[0\]\.operation\.ports\[0\]: .*value ignored/,
    );
  });
});
