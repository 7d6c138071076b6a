// Test scaffolding for config/: real files in a temporary directory, and the whole pipeline
// (read → store → compile) run over them, so tests see what a user of the waypoint would see.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { type CompileInput, compileSnapshot } from './compile.ts';
import { readManifests } from './load.ts';
import type { Snapshot } from './model.ts';
import { ResourceStore, type UpdateReport } from './store.ts';

const made: string[] = [];

/** Writes files (relative path → content) under a new temporary directory and returns it. */
export async function writeTree(files: Readonly<Record<string, string>>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'waypoint-config-'));
  made.push(dir);
  for (const [rel, text] of Object.entries(files)) {
    const path = join(dir, rel);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, text);
  }
  return dir;
}

/** Removes every directory writeTree made; call from afterAll. */
export async function removeTrees(): Promise<void> {
  await Promise.all(made.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

export const OPTS: CompileInput = {
  gateway: { namespace: 'bank', name: 'waypoint' },
  trustDomain: 'td.example',
  clusterDomain: 'cluster.local',
  now: () => new Date(0),
};

export interface Compiled {
  readonly snapshot: Snapshot;
  readonly report: UpdateReport;
}

/** Writes files, reads them, stores them and compiles one snapshot. */
export async function compileFiles(
  files: Readonly<Record<string, string>>,
  opts: CompileInput = OPTS,
): Promise<Compiled> {
  const dir = await writeTree(files);
  const store = new ResourceStore();
  const report = store.update(await readManifests([dir]));
  return { snapshot: compileSnapshot(store.resources(), opts, 1), report };
}

/** YAML documents joined into one multi-document stream. */
export function docs(...objects: unknown[]): string {
  return objects.map((o) => stringify(o)).join('---\n');
}

type Labels = Record<string, string>;

export function waypointGateway(
  opts: {
    name?: string;
    namespace?: string;
    labels?: Labels;
    className?: string;
    listeners?: unknown[];
    allowedRoutes?: unknown;
  } = {},
): Record<string, unknown> {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: {
      name: opts.name ?? 'waypoint',
      namespace: opts.namespace ?? 'bank',
      labels: opts.labels ?? {},
    },
    spec: {
      gatewayClassName: opts.className ?? 'istio-waypoint',
      listeners: opts.listeners ?? [
        {
          name: 'mesh',
          port: 15008,
          protocol: 'HBONE',
          ...(opts.allowedRoutes ? { allowedRoutes: { namespaces: opts.allowedRoutes } } : {}),
        },
      ],
    },
  };
}

export function namespace(name: string, labels: Labels = {}): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } };
}

export function service(opts: {
  name: string;
  namespace?: string;
  labels?: Labels;
  clusterIP?: string;
  clusterIPs?: string[];
  selector?: Labels;
  ports?: unknown[];
}): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: opts.name, namespace: opts.namespace ?? 'bank', labels: opts.labels ?? {} },
    spec: {
      type: 'ClusterIP',
      clusterIP: opts.clusterIP ?? '127.0.10.1',
      ...(opts.clusterIPs ? { clusterIPs: opts.clusterIPs } : {}),
      ...(opts.selector ? { selector: opts.selector } : {}),
      ports: opts.ports ?? [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
    },
  };
}

export function pod(opts: {
  name: string;
  namespace?: string;
  labels?: Labels;
  ip?: string;
  serviceAccount?: string;
  containerPorts?: Array<{ name: string; containerPort: number }>;
  status?: Record<string, unknown>;
  deletionTimestamp?: string;
}): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: opts.name,
      namespace: opts.namespace ?? 'bank',
      labels: opts.labels ?? {},
      ...(opts.deletionTimestamp ? { deletionTimestamp: opts.deletionTimestamp } : {}),
    },
    spec: {
      ...(opts.serviceAccount ? { serviceAccountName: opts.serviceAccount } : {}),
      containers: [{ name: 'app', image: 'app:1', ports: opts.containerPorts ?? [] }],
    },
    status: opts.status ?? { phase: 'Running', podIP: opts.ip ?? '127.0.20.1' },
  };
}
