import { afterAll, describe, expect, it } from 'vitest';
import type { Snapshot } from './model.ts';
import { compileFiles, docs, namespace, pod, removeTrees, service, waypointGateway } from './test-support.ts';

afterAll(removeTrees);

const USE = 'istio.io/use-waypoint';

function serviceEntry(opts: {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
  spec?: Record<string, unknown>;
}): Record<string, unknown> {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: opts.name ?? 'ext', namespace: opts.namespace ?? 'bank', labels: opts.labels ?? {} },
    spec: {
      hosts: ['api.example.com'],
      addresses: ['127.0.30.1'],
      ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
      resolution: 'STATIC',
      endpoints: [{ address: '127.0.31.1' }],
      ...opts.spec,
    },
  };
}

async function compile(...objects: unknown[]) {
  const { snapshot, report } = await compileFiles({ 'config.yaml': docs(...objects) });
  return { snapshot, report };
}

function messages(s: Snapshot): string[] {
  return s.messages.map((m) => m.message);
}

describe('ServiceEntry binding', () => {
  it('binds every address × port of a labelled ServiceEntry, with its host as hostname', async () => {
    const { snapshot, report } = await compile(
      waypointGateway(),
      serviceEntry({
        labels: { [USE]: 'waypoint' },
        spec: {
          addresses: ['127.0.30.1', '127.0.30.2/32'],
          ports: [
            { number: 80, name: 'http', protocol: 'HTTP' },
            { number: 9000, name: 'db', protocol: 'TCP', targetPort: 9001 },
            { number: 53, name: 'dns', protocol: 'UDP' },
          ],
        },
      }),
    );
    expect(report.rejected).toEqual([]);
    expect([...snapshot.services.keys()].sort()).toEqual([
      '127.0.30.1:80',
      '127.0.30.1:9000',
      '127.0.30.2:80',
      '127.0.30.2:9000',
    ]);
    expect(snapshot.services.get('127.0.30.1:80')).toMatchObject({
      kind: 'service',
      port: 80,
      portName: 'http',
      protocol: 'http',
      service: { namespace: 'bank', name: 'ext', hostname: 'api.example.com' },
    });
    expect(snapshot.services.get('127.0.30.2:9000')?.protocol).toBe('tcp');
    // targetPort applies when the endpoint names no port of its own.
    expect(snapshot.services.get('127.0.30.2:9000')?.endpoints).toMatchObject([
      { ip: '127.0.31.1', port: 9001 },
    ]);
  });

  it('follows the namespace label, and `none` on the ServiceEntry opts out', async () => {
    const { snapshot } = await compile(
      waypointGateway(),
      namespace('bank', { [USE]: 'waypoint' }),
      serviceEntry({ name: 'inherits' }),
      serviceEntry({
        name: 'opted-out',
        labels: { [USE]: 'none' },
        spec: { addresses: ['127.0.30.9'] },
      }),
    );
    expect([...snapshot.services.keys()]).toEqual(['127.0.30.1:80']);
  });

  it('is not bound without the label', async () => {
    const { snapshot } = await compile(waypointGateway(), serviceEntry({}));
    expect(snapshot.services.size).toBe(0);
  });

  it('reaches MESH_EXTERNAL endpoints over plain TCP, MESH_INTERNAL ones over HBONE with their identity', async () => {
    const { snapshot } = await compile(
      waypointGateway(),
      serviceEntry({
        name: 'outside',
        labels: { [USE]: 'waypoint' },
        spec: {
          endpoints: [
            { address: '127.0.31.1', ports: { http: 8080 } },
            { address: '127.0.31.2', serviceAccount: 'vm' },
          ],
        },
      }),
      serviceEntry({
        name: 'inside',
        labels: { [USE]: 'waypoint' },
        spec: {
          addresses: ['127.0.30.5'],
          location: 'MESH_INTERNAL',
          endpoints: [{ address: '127.0.31.5', serviceAccount: 'vm' }],
        },
      }),
    );
    expect(snapshot.services.get('127.0.30.1:80')?.endpoints).toEqual([
      {
        ip: '127.0.31.1',
        port: 8080,
        identity: 'spiffe://td.example/ns/bank/sa/default',
        ready: true,
        serving: true,
        terminating: false,
        transport: 'plain',
      },
      expect.objectContaining({ ip: '127.0.31.2', port: 80, identity: 'spiffe://td.example/ns/bank/sa/vm' }),
    ]);
    expect(snapshot.services.get('127.0.30.5:80')?.endpoints).toMatchObject([
      { ip: '127.0.31.5', port: 80, identity: 'spiffe://td.example/ns/bank/sa/vm', transport: 'hbone' },
    ]);
  });

  it('takes the Pods a workloadSelector picks, with their service accounts and readiness', async () => {
    const { snapshot } = await compile(
      waypointGateway(),
      serviceEntry({
        labels: { [USE]: 'waypoint' },
        spec: {
          location: 'MESH_INTERNAL',
          resolution: 'NONE',
          endpoints: null,
          ports: [{ number: 80, name: 'http', targetPort: 8080 }],
          workloadSelector: { labels: { app: 'legacy' } },
        },
      }),
      pod({ name: 'legacy-0', ip: '127.0.20.1', labels: { app: 'legacy' }, serviceAccount: 'legacy' }),
      pod({
        name: 'legacy-1',
        ip: '127.0.20.2',
        labels: { app: 'legacy' },
        status: {
          phase: 'Running',
          podIP: '127.0.20.2',
          conditions: [{ type: 'Ready', status: 'False' }],
        },
      }),
      pod({ name: 'other', ip: '127.0.20.3', labels: { app: 'other' } }),
    );
    expect(snapshot.services.get('127.0.30.1:80')?.endpoints).toMatchObject([
      {
        ip: '127.0.20.1',
        port: 8080,
        identity: 'spiffe://td.example/ns/bank/sa/legacy',
        ready: true,
        transport: 'hbone',
        pod: { name: 'legacy-0' },
      },
      { ip: '127.0.20.2', ready: false, identity: 'spiffe://td.example/ns/bank/sa/default' },
    ]);
  });

  it('warns about a ServiceEntry without addresses and does not bind it', async () => {
    const { snapshot } = await compile(
      waypointGateway(),
      serviceEntry({ labels: { [USE]: 'waypoint' }, spec: { addresses: null } }),
    );
    expect(snapshot.services.size).toBe(0);
    expect(messages(snapshot)).toContainEqual(
      expect.stringMatching(/ServiceEntry bank\/ext: has no spec\.addresses.*auto-allocates/),
    );
  });

  it('skips DNS endpoints with a warning and keeps the IP ones', async () => {
    const { snapshot } = await compile(
      waypointGateway(),
      serviceEntry({
        labels: { [USE]: 'waypoint' },
        spec: {
          resolution: 'DNS',
          endpoints: [{ address: 'backend.example.com' }, { address: '127.0.31.1' }],
        },
      }),
    );
    expect(snapshot.services.get('127.0.30.1:80')?.endpoints.map((e) => e.ip)).toEqual(['127.0.31.1']);
    expect(messages(snapshot)).toContainEqual(
      expect.stringMatching(/DNS endpoints are not supported yet; skipped: backend\.example\.com/),
    );
  });

  it('leaves a VIP:port a Service already holds to the Service', async () => {
    const { snapshot } = await compile(
      waypointGateway(),
      namespace('bank', { [USE]: 'waypoint' }),
      service({ name: 'frontend', clusterIP: '127.0.30.1' }),
      serviceEntry({}),
    );
    expect(snapshot.services.get('127.0.30.1:80')?.service.name).toBe('frontend');
    expect(messages(snapshot)).toContainEqual(
      expect.stringMatching(/ServiceEntry bank\/ext: 127\.0\.30\.1:80 is already bound to bank\/frontend/),
    );
  });
});

describe('ServiceEntry validation', () => {
  it('rejects a ServiceEntry without hosts, with bad addresses or STATIC hostnames, naming the fields', async () => {
    const { report } = await compile(
      serviceEntry({ name: 'a', spec: { hosts: [] } }),
      serviceEntry({ name: 'b', spec: { addresses: ['not-an-ip'] } }),
      serviceEntry({ name: 'c', spec: { endpoints: [{ address: 'db.example.com' }] } }),
      serviceEntry({ name: 'd', spec: { endpoints: [{ address: '127.0.31.1', ports: { grpc: 90 } }] } }),
    );
    const text = JSON.stringify(report.rejected);
    expect(report.rejected).toHaveLength(4);
    expect(text).toMatch(/spec\.hosts/);
    expect(text).toMatch(/spec\.addresses\[0\].*expected an IP address or CIDR/);
    expect(text).toMatch(/spec\.endpoints\[0\]\.address.*resolution STATIC needs an IP address/);
    expect(text).toMatch(/spec\.endpoints\[0\]\.ports\.grpc.*no port named grpc/);
  });
});
