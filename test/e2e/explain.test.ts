// `node-waypoint explain` and `validate` as a user runs them: black-box, on manifests written to a
// temp dir and on the demo config. No sockets: both commands only read configuration. Addresses
// (in manifests only): VIPs 127.0.133.N, pods 127.0.134.N.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliProcess, id, ROOT, serviceYaml, spawnCli, waypointYaml } from '../helpers/mesh.ts';

const SLEEP = id('shop', 'sleep');
const OTHER = id('other', 'client');

const policy = (name: string, spec: string, annotations = ''): string => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ${name}
  namespace: shop${annotations}
spec:
${spec}`;

const GOOD = [
  waypointYaml(),
  serviceYaml({
    name: 'api',
    vip: '127.0.133.10',
    port: 8080,
    pods: [{ name: 'api-a', ip: '127.0.134.10' }],
  }),
  serviceYaml({
    name: 'db',
    vip: '127.0.133.11',
    port: 5432,
    portName: 'tcp-db',
    pods: [{ name: 'db-a', ip: '127.0.134.11' }],
  }),
  serviceYaml({
    name: 'open',
    vip: '127.0.133.12',
    port: 8080,
    pods: [{ name: 'open-a', ip: '127.0.134.12' }],
  }),
  policy(
    'api-allow',
    `  targetRefs: [{kind: Service, group: "", name: api}]
  rules:
    - from: [{source: {principals: ["cluster.local/ns/shop/sa/sleep"]}}]
      to: [{operation: {methods: ["GET"]}}]
`,
  ),
  policy(
    'api-deny',
    `  targetRefs: [{kind: Service, group: "", name: api}]
  action: DENY
  rules:
    - to: [{operation: {paths: ["/admin*"]}}]
`,
  ),
  policy(
    'api-shadow',
    `  targetRefs: [{kind: Service, group: "", name: api}]
  action: DENY
  rules:
    - when: [{key: "request.headers[x-shadow]", values: ["1"]}]
`,
    '\n  annotations:\n    istio.io/dry-run: "true"',
  ),
  policy(
    'db-allow',
    `  targetRefs: [{kind: Service, group: "", name: db}]
  rules:
    - from: [{source: {principals: ["cluster.local/ns/shop/sa/sleep"]}}]
      to: [{operation: {methods: ["GET"]}}]
`,
  ),
  policy('by-selector', '  selector: {matchLabels: {app: api}}\n  rules: [{}]\n'),
  policy(
    'bad-when',
    `  targetRefs: [{kind: Service, group: "", name: open}]
  action: DENY
  rules:
    - when: [{key: request.nonsense, values: ["x"]}]
`,
  ),
].join('---\n');

const BAD = `${GOOD}---
apiVersion: v1
kind: Service
metadata:
  name: broken
  namespace: shop
spec:
  clusterIP: 127.0.133.20
  ports:
    - name: http
      port: "not-a-port"
`;

let dir: string;
let good: string;
let bad: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'waypoint-explain-'));
  good = join(dir, 'good.yaml');
  bad = join(dir, 'bad.yaml');
  await writeFile(good, GOOD);
  await writeFile(bad, BAD);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const p: CliProcess = spawnCli(args);
  const code = await p.exited;
  return { code, out: p.stdout(), err: p.stderr() };
}

const explain = (...args: string[]) =>
  run(['explain', '--config', good, '--gateway', 'shop/waypoint', ...args]);

describe('node-waypoint explain', () => {
  it('allows a request an ALLOW rule matches, naming the rule (exit 0)', async () => {
    const r = await explain('--from', SLEEP, '--to', 'api.shop:8080', '--method', 'GET', '--path', '/items');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('Destination:  Service shop/api at 127.0.133.10:8080, protocol http');
    expect(r.out).toMatch(/shop\/api-allow {2}ALLOW {2}1 rule {2}via Service/);
    expect(r.out).toContain('1. CUSTOM: (none)');
    expect(r.out).toContain('2. DENY: shop/api-deny, shop/api-shadow [dry-run: reported only]');
    expect(r.out).toContain('3. ALLOW: shop/api-allow');
    expect(r.out).toContain('shop/api-allow rule[0]: matches');
    expect(r.out).toContain('authz ALLOW matched ns[shop]-policy[api-allow]-rule[0]: allowed');
    expect(r.out).toMatch(/Verdict: allowed\n$/);
  });

  it('denies on a DENY rule before any ALLOW (exit 3), after path normalization', async () => {
    const r = await explain(
      '--from',
      SLEEP,
      '--to',
      'api.shop.svc.cluster.local:8080',
      '--path',
      '/x/../admin/users',
    );
    expect(r.code).toBe(3);
    expect(r.out).toContain('path normalized to /admin/users');
    expect(r.out).toContain('authz DENY matched ns[shop]-policy[api-deny]-rule[0]: denied');
    expect(r.out).toContain(
      'Verdict: denied: rbac_access_denied_matched_policy[ns[shop]-policy[api-deny]-rule[0]]',
    );
  });

  it('says why nothing matched: every rule, then the implicit deny (exit 3)', async () => {
    const r = await explain('--from', OTHER, '--to', '127.0.133.10:8080', '--method', 'get');
    expect(r.code).toBe(3);
    expect(r.out).toContain('shop/api-allow rule[0]: no match');
    expect(r.out).toContain('authz: ALLOW policies apply and none matched: denied');
    expect(r.out).toContain('Verdict: denied: rbac_access_denied_matched_policy[none]');
  });

  it('reports a dry-run DENY without enforcing it, and prints JSON with --json', async () => {
    const r = await explain('--from', SLEEP, '--to', 'api.shop:8080', '-H', 'x-shadow: 1', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.verdict).toBe('allowed');
    expect(j.allowed).toBe(true);
    expect(j.request.headers['x-shadow']).toBe('1');
    expect(j.policies).toContainEqual({
      policy: 'shop/api-shadow',
      action: 'DENY',
      dryRun: true,
      rules: 1,
      attachedVia: 'service',
    });
    expect(j.explain).toContain('authz dry-run DENY: would deny (ns[shop]-policy[api-shadow]-rule[0])');
    expect(j.decisions).toEqual([
      {
        policy: 'shop/api-shadow',
        action: 'DENY',
        decision: 'would_deny',
        rule: 'ns[shop]-policy[api-shadow]-rule[0]',
      },
      {
        policy: 'shop/api-allow',
        action: 'ALLOW',
        decision: 'allow',
        rule: 'ns[shop]-policy[api-allow]-rule[0]',
      },
    ]);
  });

  it('evaluates a tcp port in its TCP form: an ALLOW rule with methods never matches', async () => {
    const r = await explain('--from', SLEEP, '--to', 'db.shop:5432', '--json');
    expect(r.code).toBe(3);
    const j = JSON.parse(r.out);
    expect(j.destination).toMatchObject({ name: 'shop/db', protocol: 'tcp', phase: 'tcp' });
    expect(j.rules).toEqual([{ policy: 'shop/db-allow', rule: 0, matched: false }]);
    expect(j.verdict).toBe('denied: rbac_access_denied_matched_policy[none]');
  });

  it('allows where no enforced ALLOW applies; a DENY whose only rule was dropped matches nothing', async () => {
    const r = await explain('--from', OTHER, '--to', 'open.shop:8080', '--method', 'DELETE');
    expect(r.code).toBe(0);
    expect(r.out).toContain('shop/bad-when  DENY  0 rules  via Service');
    expect(r.out).toContain('(no rules in force)');
    expect(r.out).toContain('authz: no enforced ALLOW policy applies: allowed');
  });

  it('exits 1 for a destination the waypoint does not serve, 2 on usage errors', async () => {
    const nope = await explain('--from', SLEEP, '--to', 'nope.shop:8080');
    expect(nope.code).toBe(1);
    expect(nope.err).toContain('nope.shop:8080 is not a Service port bound to waypoint shop/waypoint');
    const noFrom = await explain('--to', 'api.shop:8080');
    expect(noFrom.code).toBe(2);
    expect(noFrom.err).toContain('explain: --from is required');
    expect(noFrom.err).toContain('Usage: node-waypoint explain');
    // The other usage errors are refused in-process (src/cli/explain.test.ts); this one needs the config.
    const badTo = await explain('--from', SLEEP, '--to', 'api.shop');
    expect(badTo.code).toBe(2);
    expect(badTo.err).toContain('to: expected SERVICE.NAMESPACE:PORT');
  });

  it('explains the demo: DELETE / on frontend is denied by frontend-viewer, GET allowed', async () => {
    const args = [
      'explain',
      '--config',
      join(ROOT, 'config/demo'),
      '--gateway',
      'bank-of-anthos/waypoint',
      '--from',
      'spiffe://cluster.local/ns/bank-of-anthos/sa/sleep',
      '--to',
      'frontend.bank-of-anthos:80',
    ];
    const del = await run([...args, '--method', 'DELETE', '--path', '/']);
    expect(del.code).toBe(3);
    expect(del.out).toContain('bank-of-anthos/frontend-viewer  ALLOW  2 rules  via Service');
    expect(del.out).toContain('Verdict: denied: rbac_access_denied_matched_policy[none]');
    const get = await run([...args, '--method', 'GET', '--path', '/']);
    expect(get.code).toBe(0);
    expect(get.out).toContain(
      'authz ALLOW matched ns[bank-of-anthos]-policy[frontend-viewer]-rule[0]: allowed',
    );
  });
});

describe('node-waypoint explain: routes', () => {
  it("names the demo canary's route and rule and both backends with their shares", async () => {
    const r = await run([
      'explain',
      '--config',
      join(ROOT, 'config/demo'),
      '--gateway',
      'bank-of-anthos/waypoint',
      '--from',
      'spiffe://cluster.local/ns/bank-of-anthos/sa/sleep',
      '--to',
      'balancereader.bank-of-anthos:8080',
    ]);
    expect(r.code).toBe(0);
    expect(r.out).toContain('route HTTPRoute bank-of-anthos.balancereader-canary.canary matched');
    expect(r.out).toMatch(
      /backends: inbound-vip\|8080\|http\|balancereader-v1\.bank-of-anthos\.svc\.cluster\.local 90%, inbound-vip\|8080\|http\|balancereader-v2\.bank-of-anthos\.svc\.cluster\.local 10%/,
    );
  });
});

describe('node-waypoint validate', () => {
  it('passes a configuration with warnings only (exit 0) and lists each warning', async () => {
    const r = await run(['validate', '--config', good, '--gateway', 'shop/waypoint']);
    expect(r.code).toBe(0);
    expect(r.out).toContain(
      'AuthorizationPolicy shop/by-selector: spec.selector: selector policies are enforced by ztunnel, not by the waypoint',
    );
    expect(r.out).toMatch(/warning: .*AuthorizationPolicy shop\/bad-when: spec\.rules\[0\]\.when\[0\]/);
    expect(r.out).toMatch(
      /warning: .*AuthorizationPolicy shop\/db-allow: spec\.rules\[0\]\.to\[0\]\.operation\.methods: HTTP-only fields on a TCP port, shop\/db:5432 \(tcp\): an ALLOW rule with them never matches TCP traffic/,
    );
    expect(r.out).not.toContain('shop/api-allow: spec.rules');
    expect(r.out).toMatch(/0 errors, \d+ warnings\n$/);
  });

  it('finds the waypoint Gateway itself when --gateway is not given', async () => {
    const r = await run(['validate', '--config', good]);
    expect(r.code).toBe(0);
    expect(r.out).toContain('note: validating for gateway shop/waypoint');
  });

  it('fails a configuration with a rejected resource (exit 1), naming the field', async () => {
    const r = await run(['validate', '--config', bad, '--gateway', 'shop/waypoint']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/error: rejected: .*Service shop\/broken: spec\.ports\[0\]\.port/);
    expect(r.out).toMatch(/1 error, \d+ warnings\n$/);
  });

  it('exits 2 without --config', async () => {
    const r = await run(['validate']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('Usage: node-waypoint validate');
  });

  it('passes the demo configuration', async () => {
    const r = await run([
      'validate',
      '--config',
      join(ROOT, 'config/demo'),
      '--gateway',
      'bank-of-anthos/waypoint',
    ]);
    expect(r.code).toBe(0);
    expect(r.out).toContain('0 errors');
  });
});
