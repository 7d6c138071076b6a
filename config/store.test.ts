import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { objectMeta } from './kinds/common.ts';
import { builtinKinds, KindRegistry } from './kinds/registry.ts';
import type { Service } from './kinds/service.ts';
import { readManifests } from './load.ts';
import { ResourceStore } from './store.ts';
import { docs, namespace, removeTrees, service, writeTree } from './test-support.ts';

afterAll(removeTrees);

const frontend = service({ name: 'frontend', clusterIP: '127.0.10.1' });
const backend = service({ name: 'backend', clusterIP: '127.0.10.2' });
const badPort = service({
  name: 'frontend',
  clusterIP: '127.0.10.1',
  ports: [{ name: 'http', port: 'eighty' }],
});

async function load(store: ResourceStore, dir: string) {
  return store.update(await readManifests([dir]));
}

function names(store: ResourceStore): string[] {
  return store.resources().map((r) => `${r.kind} ${r.namespace}/${r.name}`);
}

describe('ResourceStore', () => {
  it('rejects one invalid document alone, naming file, kind, namespace/name and field', async () => {
    const dir = await writeTree({ 'services.yaml': docs(namespace('bank'), backend, badPort) });
    const store = new ResourceStore();
    const report = await load(store, dir);
    const file = join(dir, 'services.yaml');
    expect(report.rejected).toHaveLength(1);
    expect(report.rejected[0]).toMatchObject({
      severity: 'error',
      message: `${file}#3: Service bank/frontend: spec.ports[0].port: expected an integer 1-65535, got "eighty"`,
      origin: `${file}#3`,
      kind: 'Service',
      namespace: 'bank',
      name: 'frontend',
      field: 'spec.ports[0].port',
    });
    expect(report.applied).toBe(2);
    expect(names(store)).toEqual(['Namespace /bank', 'Service bank/backend']);
  });

  it('names every kind of field mistake in words', async () => {
    const dir = await writeTree({
      'a.yaml': docs(
        service({ name: 'ip', clusterIP: '127.0.0.999' }),
        service({ name: 'Upper_Case' }),
        { ...service({ name: 'lbl' }), metadata: { name: 'lbl', namespace: 'bank', labels: { version: 1 } } },
        { apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'bank' }, spec: {} },
      ),
    });
    const report = await load(new ResourceStore(), dir);
    const texts = report.rejected.map((m) => m.message.slice(m.message.indexOf(': ') + 2));
    expect(texts).toEqual([
      'Service bank/ip: spec.clusterIP: expected an IP address or "None", got "127.0.0.999"',
      expect.stringMatching(/^Service bank\/Upper_Case: metadata\.name: expected a DNS-1123 name/),
      'Service bank/lbl: metadata.labels.version: expected string, got 1',
      'Service bank/(no name): metadata.name: required',
    ]);
  });

  it('keeps the last good version when an edit makes a resource invalid', async () => {
    const dir = await writeTree({ 'services.yaml': docs(namespace('bank'), backend, frontend) });
    const file = join(dir, 'services.yaml');
    const store = new ResourceStore();
    expect((await load(store, dir)).changed).toBe(true);
    const before = store.resources().find((r) => r.name === 'frontend');

    await writeFile(file, docs(namespace('bank'), backend, badPort));
    const report = await load(store, dir);
    expect(report.rejected[0]?.message).toBe(
      `${file}#3: Service bank/frontend: spec.ports[0].port: expected an integer 1-65535, got "eighty"; keeping the last good version from ${file}#3`,
    );
    expect(report.changed).toBe(false);
    const after = store.resources().find((r) => r.name === 'frontend') as { spec: Service } | undefined;
    expect(after).toBe(before);
    expect(after?.spec.spec?.ports?.[0]?.port).toBe(80);
  });

  it('keeps every resource of a file that no longer parses, and says so', async () => {
    const dir = await writeTree({
      'services.yaml': docs(backend, frontend),
      'ns.yaml': docs(namespace('bank')),
    });
    const store = new ResourceStore();
    await load(store, dir);
    await writeFile(join(dir, 'services.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: [oops\n');
    await rm(join(dir, 'ns.yaml'));
    const report = await load(store, dir);
    expect(report.rejected).toHaveLength(1);
    expect(report.rejected[0]?.message).toMatch(
      new RegExp(
        `^${join(dir, 'services.yaml')}: line \\d+, column \\d+: .*; keeping the 2 resources previously loaded from it$`,
      ),
    );
    // The namespace's file was deleted: that is a deletion, not an error.
    expect(names(store)).toEqual(['Service bank/backend', 'Service bank/frontend']);
    expect(report.changed).toBe(true);
  });

  it('keeps what a configured directory defined when the directory itself disappears', async () => {
    const root = await writeTree({ 'conf/services.yaml': docs(backend) });
    const dir = join(root, 'conf');
    const store = new ResourceStore();
    await load(store, `${dir}/`);
    await rm(dir, { recursive: true });
    const report = await load(store, `${dir}/`);
    expect(report.rejected.map((m) => m.message)).toEqual([
      `${dir}/: does not exist; keeping the 1 resource previously loaded from it`,
    ]);
    expect(names(store)).toEqual(['Service bank/backend']);
  });

  it('removes a resource that disappeared from every file', async () => {
    const dir = await writeTree({ 'services.yaml': docs(backend, frontend) });
    const store = new ResourceStore();
    await load(store, dir);
    await writeFile(join(dir, 'services.yaml'), docs(backend));
    const report = await load(store, dir);
    expect(report).toMatchObject({ changed: true, applied: 1, rejected: [], warnings: [] });
    expect(names(store)).toEqual(['Service bank/backend']);
  });

  it('lets the later file in sorted order win a duplicate, with a warning naming both', async () => {
    const dir = await writeTree({
      'b.yaml': docs(service({ name: 'frontend', clusterIP: '127.0.10.9' })),
      'a.yaml': docs(frontend),
    });
    const store = new ResourceStore();
    const report = await load(store, dir);
    expect(report.warnings).toHaveLength(1);
    expect(report.warnings[0]?.message).toBe(
      `${join(dir, 'b.yaml')}: Service bank/frontend is also defined in ${join(dir, 'a.yaml')}; using ${join(dir, 'b.yaml')} (the later file in sorted order)`,
    );
    const kept = store.resources()[0] as { spec: Service; origin: string };
    expect(kept.origin).toBe(join(dir, 'b.yaml'));
    expect(kept.spec.spec?.clusterIP).toBe('127.0.10.9');
  });

  it('counts unknown kinds as ignored and rejects documents without apiVersion or kind', async () => {
    const dir = await writeTree({
      'mixed.yaml': docs(
        // A kind no filter registers (filters register theirs when imported, in any test file).
        { apiVersion: 'widgets.example.io/v1', kind: 'Widget', metadata: { name: 'p' } },
        { apiVersion: 'widgets.example.io/v1', kind: 'Widget', metadata: { name: 'q' } },
        { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } },
        { apiVersion: 'v1', metadata: { name: 'nokind' } },
        { kind: 'Service', metadata: { name: 'noversion' } },
      ),
    });
    const file = join(dir, 'mixed.yaml');
    const report = await load(new ResourceStore(), dir);
    expect(report.ignoredKinds).toEqual({ 'Widget.widgets.example.io': 2, ConfigMap: 1 });
    expect(report.rejected.map((m) => m.message)).toEqual([
      `${file}#4: kind: required`,
      `${file}#5: Service noversion: apiVersion: required`,
    ]);
  });

  it('rejects an unsupported version of a known kind', async () => {
    const dir = await writeTree({
      'gw.yaml': docs({
        apiVersion: 'gateway.networking.k8s.io/v1alpha1',
        kind: 'Gateway',
        metadata: { name: 'waypoint', namespace: 'bank' },
        spec: {},
      }),
    });
    const report = await load(new ResourceStore(), dir);
    expect(report.rejected[0]?.message).toContain(
      'Gateway bank/waypoint: apiVersion: gateway.networking.k8s.io/v1alpha1 is not supported for Gateway (supported: gateway.networking.k8s.io/v1, gateway.networking.k8s.io/v1beta1)',
    );
  });

  it('accepts kubectl output with fields it does not know, and defaults the namespace', async () => {
    const dir = await writeTree({
      'svc.yaml': `apiVersion: v1
kind: Service
metadata:
  name: frontend
  creationTimestamp: null
  managedFields: [{manager: kubectl, operation: Update}]
  uid: 0b2c
spec:
  clusterIP: 127.0.10.1
  internalTrafficPolicy: Cluster
  ipFamilies: [IPv4]
  ports:
  - port: 80
    targetPort: http
status:
  loadBalancer: {}
`,
    });
    const store = new ResourceStore();
    const report = await load(store, dir);
    expect(report.rejected).toEqual([]);
    const [svc] = store.resources();
    expect(svc).toMatchObject({
      kind: 'Service',
      group: '',
      version: 'v1',
      namespace: 'default',
      name: 'frontend',
    });
    const firstPort = (svc!.spec as Service).spec?.ports?.[0];
    expect(firstPort).toMatchObject({ port: 80, targetPort: 'http' });
    expect(Object.isFrozen(firstPort)).toBe(true);
  });

  it('validates kinds registered later without any change to the store', async () => {
    const registry = builtinKinds();
    registry.register({
      kind: 'AuthorizationPolicy',
      groups: ['security.istio.io'],
      namespaced: true,
      schema: z.looseObject({
        metadata: objectMeta,
        spec: z.looseObject({ action: z.enum(['ALLOW', 'DENY']) }),
      }),
    });
    const dir = await writeTree({
      'authz.yaml': docs({
        apiVersion: 'security.istio.io/v1',
        kind: 'AuthorizationPolicy',
        metadata: { name: 'p', namespace: 'bank' },
        spec: { action: 'MAYBE' },
      }),
    });
    const report = await load(new ResourceStore(registry), dir);
    expect(report.ignoredKinds).toEqual({});
    expect(report.rejected[0]?.message).toMatch(
      /AuthorizationPolicy bank\/p: spec\.action: expected one of "ALLOW", "DENY", got "MAYBE"$/,
    );
  });
});

describe('ResourceStore: the same document object again', () => {
  it('is not validated again, and a new object with other content is', () => {
    let parses = 0;
    const registry = new KindRegistry();
    registry.register({
      kind: 'Thing',
      groups: ['example.com'],
      namespaced: true,
      schema: z.looseObject({ metadata: z.looseObject({ name: z.string() }) }).transform((v) => {
        parses++;
        return v;
      }),
    });
    const store = new ResourceStore(registry);
    const a = { apiVersion: 'example.com/v1', kind: 'Thing', metadata: { name: 'a', namespace: 'ns' } };
    const load = (...values: unknown[]) => ({
      documents: values.map((value) => ({ origin: 'controller x', file: 'controller x', value })),
      fileErrors: [],
      files: [],
    });
    store.update(load(a));
    store.update(load(a));
    expect(parses).toBe(1);
    expect(store.update(load({ ...a, spec: { x: 1 } })).changed).toBe(true);
    expect(parses).toBe(2);
  });
});
