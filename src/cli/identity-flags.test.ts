import { describe, expect, it } from 'vitest';
import { UsageError } from './flags.ts';
import { identitySource } from './identity-flags.ts';

// The environment Istio's waypoint template (files/waypoint.yaml) gives the container.
const TEMPLATE_ENV = {
  POD_NAME: 'waypoint-5d9c7-abcde',
  POD_NAMESPACE: 'shop',
  SERVICE_ACCOUNT: 'waypoint',
  CA_ADDR: 'istiod.istio-system.svc:15012',
  TRUST_DOMAIN: 'corp.example',
  ISTIO_META_CLUSTER_ID: 'east',
  ISTIO_META_WORKLOAD_NAME: 'waypoint',
  PILOT_CERT_PROVIDER: 'istiod',
};

describe('identity flags', () => {
  it("with no flags, istiod's CA with the template's environment and mounts", () => {
    expect(identitySource({}, TEMPLATE_ENV)).toEqual({
      kind: 'ca',
      addr: 'istiod.istio-system.svc:15012',
      rootFile: '/var/run/secrets/istio/root-cert.pem',
      tokenFile: '/var/run/secrets/tokens/istio-token',
      trustDomain: 'corp.example',
      clusterId: 'east',
      namespace: 'shop',
      serviceAccount: 'waypoint',
    });
  });

  it('flags win over the environment; Istio defaults when it says nothing', () => {
    const src = identitySource(
      { 'ca-addr': 'cert-manager-istio-csr.cert-manager.svc:443', 'service-account': 'other' },
      { POD_NAMESPACE: 'shop' },
    );
    expect(src).toMatchObject({
      addr: 'cert-manager-istio-csr.cert-manager.svc:443',
      serviceAccount: 'other',
      trustDomain: 'cluster.local',
      clusterId: 'Kubernetes',
    });
  });

  it('files are the other way, all three or none', () => {
    expect(identitySource({ cert: 'c', key: 'k', ca: 'r' }, TEMPLATE_ENV)).toEqual({
      kind: 'files',
      cert: 'c',
      key: 'k',
      ca: 'r',
    });
    expect(() => identitySource({ cert: 'c' }, TEMPLATE_ENV)).toThrow(/go together/);
  });

  it('says what is missing without the files and without the template', () => {
    expect(() => identitySource({}, {})).toThrow(UsageError);
    expect(() => identitySource({}, { POD_NAMESPACE: 'shop' })).toThrow(/--service-account/);
    expect(() => identitySource({ 'ca-addr': 'istiod' }, TEMPLATE_ENV)).toThrow(/HOST:PORT/);
  });
});
