import { afterAll, describe, expect, it } from 'vitest';
import type { Endpoint, Snapshot } from './model.ts';
import { compileFiles, docs, namespace, pod, removeTrees, service, waypointGateway } from './test-support.ts';

afterAll(removeTrees);

const bound = [waypointGateway(), namespace('bank', { 'istio.io/use-waypoint': 'waypoint' })];

function slice(
  name: string,
  opts: {
    service?: string;
    addressType?: string;
    ports?: unknown[];
    endpoints?: unknown[];
    namespace?: string;
  },
): Record<string, unknown> {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name,
      namespace: opts.namespace ?? 'bank',
      labels: { 'kubernetes.io/service-name': opts.service ?? 'frontend' },
    },
    addressType: opts.addressType ?? 'IPv4',
    ports: opts.ports ?? [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: opts.endpoints ?? [],
  };
}

/** ip:port ready/serving/terminating identity, one line per endpoint. */
function summary(endpoints: readonly Endpoint[] | undefined): string[] {
  return (endpoints ?? []).map(
    (e) =>
      `${e.ip}:${e.port} ${e.ready ? 'R' : '-'}${e.serving ? 'S' : '-'}${e.terminating ? 'T' : '-'} ${e.identity}`,
  );
}

async function compile(...objects: unknown[]): Promise<Snapshot> {
  const { snapshot, report } = await compileFiles({ 'config.yaml': docs(...objects) });
  expect(report.rejected).toEqual([]);
  return snapshot;
}

describe('endpoints from EndpointSlices', () => {
  it('reads conditions with Kubernetes defaults and takes the pod identity from targetRef', async () => {
    const s = await compile(
      ...bound,
      service({ name: 'frontend', selector: { app: 'frontend' } }),
      pod({ name: 'fe-1', serviceAccount: 'frontend-sa', ip: '127.0.20.1' }),
      pod({ name: 'fe-2', ip: '127.0.20.2' }),
      slice('frontend-abc', {
        endpoints: [
          { addresses: ['127.0.20.1'], targetRef: { kind: 'Pod', name: 'fe-1', namespace: 'bank' } },
          {
            addresses: ['127.0.20.2'],
            conditions: { ready: false },
            targetRef: { kind: 'Pod', name: 'fe-2' },
          },
          {
            addresses: ['127.0.20.3'],
            conditions: { ready: false, serving: true, terminating: true },
            targetRef: { kind: 'Pod', name: 'gone' },
          },
        ],
      }),
    );
    expect(summary(s.services.get('127.0.10.1:80')?.endpoints)).toEqual([
      '127.0.20.1:8080 RS- spiffe://td.example/ns/bank/sa/frontend-sa',
      '127.0.20.2:8080 --- spiffe://td.example/ns/bank/sa/default',
      '127.0.20.3:8080 -ST spiffe://td.example/ns/bank/sa/default',
    ]);
    expect(s.services.get('127.0.10.1:80')?.endpoints[0]?.pod).toMatchObject({
      name: 'fe-1',
      serviceAccount: 'frontend-sa',
    });
    // The pod-less endpoint is reported, the one whose pod has no service account is not.
    const warnings = s.messages
      .map((m) => m.message)
      .filter((m) => m.includes('no Pod in the configuration'));
    expect(warnings).toEqual([
      expect.stringMatching(
        /Service bank\/frontend: no Pod in the configuration for endpoint\(s\) 127\.0\.20\.3; assuming identity spiffe:\/\/td\.example\/ns\/bank\/sa\/default$/,
      ),
    ]);
  });

  it('matches slice ports to Service ports by name and uses the slice port number', async () => {
    const s = await compile(
      ...bound,
      service({
        name: 'frontend',
        ports: [
          { name: 'http', port: 80, targetPort: 'web' },
          { name: 'metrics', port: 9090 },
        ],
      }),
      slice('frontend-1', {
        ports: [
          { name: 'metrics', port: 9102 },
          { name: 'http', port: 8080 },
        ],
        endpoints: [{ addresses: ['127.0.20.1'] }],
      }),
      slice('frontend-fqdn', { addressType: 'FQDN', endpoints: [{ addresses: ['db.example.com'] }] }),
      slice('other-svc', { service: 'backend', endpoints: [{ addresses: ['127.0.20.9'] }] }),
    );
    expect(summary(s.services.get('127.0.10.1:80')?.endpoints).map((x) => x.split(' ')[0])).toEqual([
      '127.0.20.1:8080',
    ]);
    expect(summary(s.services.get('127.0.10.1:9090')?.endpoints).map((x) => x.split(' ')[0])).toEqual([
      '127.0.20.1:9102',
    ]);
  });

  it('treats an unnamed Service port and an unnamed slice port as the same port', async () => {
    const s = await compile(
      ...bound,
      service({ name: 'frontend', ports: [{ port: 80 }] }),
      slice('frontend-1', { ports: [{ name: '', port: 8081 }], endpoints: [{ addresses: ['127.0.20.1'] }] }),
    );
    expect(s.services.get('127.0.10.1:80')?.endpoints.map((e) => e.port)).toEqual([8081]);
  });

  it('keys an IPv6 Service as [ip]:port and reads IPv6 slices', async () => {
    const s = await compile(
      ...bound,
      service({ name: 'frontend', clusterIP: '::1', ports: [{ name: 'http', port: 80 }] }),
      slice('frontend-v6', { addressType: 'IPv6', endpoints: [{ addresses: ['0::1'] }] }),
    );
    expect([...s.services.keys()]).toEqual(['[::1]:80']);
    expect(s.services.get('[::1]:80')?.endpoints.map((e) => `${e.ip} ${e.port}`)).toEqual(['::1 8080']);
  });

  it('prefers slices over the selector once any slice names the Service', async () => {
    const s = await compile(
      ...bound,
      service({ name: 'frontend', selector: { app: 'frontend' } }),
      pod({ name: 'fe-1', labels: { app: 'frontend' }, ip: '127.0.20.1' }),
      slice('frontend-1', { endpoints: [{ addresses: ['127.0.20.7'] }] }),
    );
    expect(s.services.get('127.0.10.1:80')?.endpoints.map((e) => e.ip)).toEqual(['127.0.20.7']);
  });

  it('warns when a bound Service port has no endpoints', async () => {
    const s = await compile(...bound, service({ name: 'frontend' }));
    expect(s.services.get('127.0.10.1:80')?.endpoints).toEqual([]);
    expect(s.messages.map((m) => m.message)).toContainEqual(
      expect.stringMatching(
        /Service bank\/frontend: port 80 is bound to this waypoint but has no endpoints$/,
      ),
    );
  });
});

describe('endpoints from Pods when no EndpointSlice names the Service', () => {
  const ports = [
    { name: 'http', port: 80, targetPort: 'web' },
    { name: 'admin', port: 81, targetPort: 9000 },
    { name: 'plain', port: 82 },
  ];

  it('resolves named, numeric and absent targetPorts on the selected pods', async () => {
    const s = await compile(
      ...bound,
      service({ name: 'frontend', selector: { app: 'frontend' }, ports }),
      pod({
        name: 'fe-1',
        labels: { app: 'frontend', version: 'v1' },
        ip: '127.0.20.1',
        serviceAccount: 'fe',
        containerPorts: [{ name: 'web', containerPort: 8080 }],
      }),
      pod({ name: 'fe-noport', labels: { app: 'frontend' }, ip: '127.0.20.2' }),
      pod({ name: 'other-app', labels: { app: 'backend' }, ip: '127.0.20.3' }),
      pod({ name: 'fe-elsewhere', namespace: 'shop', labels: { app: 'frontend' }, ip: '127.0.20.4' }),
    );
    expect(summary(s.services.get('127.0.10.1:80')?.endpoints)).toEqual([
      '127.0.20.1:8080 RS- spiffe://td.example/ns/bank/sa/fe',
    ]);
    expect(summary(s.services.get('127.0.10.1:81')?.endpoints).map((x) => x.split(' ')[0])).toEqual([
      '127.0.20.1:9000',
      '127.0.20.2:9000',
    ]);
    expect(summary(s.services.get('127.0.10.1:82')?.endpoints).map((x) => x.split(' ')[0])).toEqual([
      '127.0.20.1:82',
      '127.0.20.2:82',
    ]);
    expect(s.messages.map((m) => m.message)).toContainEqual(
      expect.stringContaining(
        'pod(s) without the named container port skipped: fe-noport (targetPort "web")',
      ),
    );
  });

  it('derives readiness from the Ready condition, else the phase, and marks deleted pods terminating', async () => {
    const app = { app: 'frontend' };
    const s = await compile(
      ...bound,
      service({ name: 'frontend', selector: app, ports: [{ name: 'tcp', port: 80, targetPort: 8080 }] }),
      pod({
        name: 'a-ready',
        labels: app,
        status: { podIP: '127.0.20.1', phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] },
      }),
      pod({
        name: 'b-unready',
        labels: app,
        status: { podIP: '127.0.20.2', phase: 'Running', conditions: [{ type: 'Ready', status: 'False' }] },
      }),
      pod({ name: 'c-pending', labels: app, status: { podIP: '127.0.20.3', phase: 'Pending' } }),
      pod({ name: 'd-nophase', labels: app, status: { podIP: '127.0.20.4' } }),
      pod({ name: 'e-leaving', labels: app, ip: '127.0.20.5', deletionTimestamp: '2025-01-01T00:00:00Z' }),
      pod({ name: 'f-done', labels: app, status: { podIP: '127.0.20.6', phase: 'Succeeded' } }),
      pod({ name: 'g-noip', labels: app, status: { phase: 'Running' } }),
    );
    expect(summary(s.services.get('127.0.10.1:80')?.endpoints).map((x) => x.split(' spiffe')[0])).toEqual([
      '127.0.20.1:8080 RS-',
      '127.0.20.2:8080 ---',
      '127.0.20.3:8080 ---',
      '127.0.20.4:8080 RS-',
      '127.0.20.5:8080 -ST',
    ]);
  });
});
