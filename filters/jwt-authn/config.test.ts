import { afterAll, describe, expect, it } from 'vitest';
import { compileSnapshot } from '../../config/compile.ts';
import { readManifests } from '../../config/load.ts';
import type { Snapshot } from '../../config/model.ts';
import { ResourceStore } from '../../config/store.ts';
import { removeTrees, writeTree } from '../../config/test-support.ts';
import { serviceYaml, waypointYaml } from '../../test/helpers/mesh.ts';
import type { JwtAuthnConfig } from './config.ts';
import { FILTER_NAME, JWT_AUTHN } from './index.ts';

afterAll(removeTrees);

const JWKS = '{"keys":[]}';

function ra(ns: string, name: string, spec: string): string {
  return `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: ${name}
  namespace: ${ns}
spec:
${spec}`;
}

async function compile(...extra: string[]): Promise<Snapshot> {
  const dir = await writeTree({
    'mesh.yaml': [
      waypointYaml(),
      serviceYaml({ name: 'api', vip: '10.96.0.1', port: 80, pods: [{ name: 'api-a', ip: '10.0.0.1' }] }),
      serviceYaml({ name: 'web', vip: '10.96.0.2', port: 80, pods: [{ name: 'web-a', ip: '10.0.0.2' }] }),
      ...extra,
    ].join('---\n'),
  });
  const store = new ResourceStore();
  const report = store.update(await readManifests([dir]));
  expect(report.rejected ?? []).toEqual([]);
  return compileSnapshot(
    store.resources(),
    {
      gateway: { namespace: 'shop', name: 'waypoint' },
      trustDomain: 'cluster.local',
      clusterDomain: 'cluster.local',
    },
    1,
    { [FILTER_NAME]: JWT_AUTHN.compile! },
  );
}

const config = (s: Snapshot) => s.filters[FILTER_NAME] as JwtAuthnConfig;

describe('RequestAuthentication attachment', () => {
  it('applies waypoint, GatewayClass and Service targets, merged and sorted by issuer', async () => {
    const s = await compile(
      ra(
        'shop',
        'gw',
        `  targetRefs:\n    - {group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}\n  jwtRules:\n    - {issuer: z-gw, jwks: '${JWKS}'}\n`,
      ),
      ra(
        'istio-system',
        'class',
        `  targetRefs:\n    - {group: gateway.networking.k8s.io, kind: GatewayClass, name: istio-waypoint}\n  jwtRules:\n    - {issuer: m-class, jwksUri: 'http://127.0.0.1/jwks'}\n`,
      ),
      ra(
        'shop',
        'svc',
        `  targetRefs:\n    - {kind: Service, name: api}\n  jwtRules:\n    - {issuer: a-svc, jwks: '${JWKS}', audiences: [api], fromHeaders: [{name: X-Jwt}], forwardOriginalToken: true}\n`,
      ),
    );
    const c = config(s);
    expect(c.services['shop/api']?.map((r) => r.issuer)).toEqual(['a-svc', 'm-class', 'z-gw']);
    expect(c.services['shop/web']?.map((r) => r.issuer)).toEqual(['m-class', 'z-gw']);
    expect(c.workload.map((r) => r.issuer)).toEqual(['m-class', 'z-gw']);
    const svc = c.services['shop/api']![0]!;
    expect(svc).toMatchObject({
      policy: 'shop/svc',
      audiences: ['api'],
      fromHeaders: [{ name: 'x-jwt', prefix: '' }],
      fromParams: [],
      forwardOriginalToken: true,
      timeoutMs: 5000,
    });
    expect(c.services['shop/api']![1]).toMatchObject({
      jwksUri: 'http://127.0.0.1/jwks',
      fromHeaders: [{ name: 'authorization', prefix: 'Bearer ' }],
      fromParams: ['access_token'],
      forwardOriginalToken: false,
    });
  });

  it('ignores selector policies, other gateways and misplaced GatewayClass targets with warnings', async () => {
    const s = await compile(
      ra(
        'shop',
        'sel',
        `  selector:\n    matchLabels: {app: api}\n  jwtRules:\n    - {issuer: sel, jwks: '${JWKS}'}\n`,
      ),
      ra(
        'shop',
        'other',
        `  targetRefs:\n    - {group: gateway.networking.k8s.io, kind: Gateway, name: other}\n  jwtRules:\n    - {issuer: other, jwks: '${JWKS}'}\n`,
      ),
      ra(
        'shop',
        'class',
        `  targetRefs:\n    - {group: gateway.networking.k8s.io, kind: GatewayClass, name: istio-waypoint}\n  jwtRules:\n    - {issuer: class, jwks: '${JWKS}'}\n`,
      ),
    );
    expect(config(s)).toEqual({ services: {}, workload: [] });
    const texts = s.messages.map((m) => m.message).join('\n');
    expect(texts).toMatch(
      /RequestAuthentication shop\/sel: spec.selector: selector policies are not enforced/,
    );
    expect(texts).toMatch(/RequestAuthentication shop\/class: spec.targetRefs\[0\]: .*root namespace/);
    expect(texts).not.toMatch(/shop\/other/);
  });

  it('reports a bad inline JWKS and a bad timeout', async () => {
    const s = await compile(
      ra(
        'shop',
        'bad',
        `  targetRefs:\n    - {kind: Service, name: api}\n  jwtRules:\n    - {issuer: x, jwks: 'not json', timeout: soon}\n`,
      ),
    );
    expect(config(s).services['shop/api']?.[0]).toMatchObject({ jwks: '{"keys":[]}', timeoutMs: 5000 });
    expect(s.messages.filter((m) => m.name === 'bad').map((m) => m.field)).toEqual([
      'spec.jwtRules[0].timeout',
      'spec.jwtRules[0].jwks',
    ]);
  });
});
