// deploy/ as `kubectl apply -k` sees it: rendered by Debian's kubectl 1.20 (kustomize v2.0.3, which
// .ci/run unpacks into .tmp/debian-kubectl), every object validated, and the class-defaults overlay
// applied as a strategic merge patch to the Deployment istiod renders for a waypoint.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { deploymentOverlay, hpaOverlay, pdbOverlay, validateObject } from '../helpers/k8s-schemas.ts';
import { ROOT } from '../helpers/mesh.ts';

const KUBECTL = process.env.DEBIAN_KUBECTL ?? join(ROOT, '.tmp/debian-kubectl/root/usr/bin/kubectl');

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
  spec?: Record<string, unknown>;
}

function kubectl(args: string[], input?: string): string {
  if (!existsSync(KUBECTL))
    throw new Error(
      `${KUBECTL} is missing: .ci/run unpacks Debian's kubernetes-client there (apt-get download)`,
    );
  return execFileSync(KUBECTL, args, {
    encoding: 'utf8',
    input,
    env: { PATH: process.env.PATH, KUBECONFIG: '/dev/null' },
  });
}

const docs = (text: string): K8sObject[] =>
  parseAllDocuments(text)
    .map((d) => d.toJS() as K8sObject)
    .filter(Boolean);
const render = (dir: string): K8sObject[] => docs(kubectl(['kustomize', join(ROOT, dir)]));
const find = (objs: K8sObject[], kind: string, name: string): K8sObject => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o)
    throw new Error(`no ${kind} ${name} in ${objs.map((x) => `${x.kind}/${x.metadata.name}`).join(', ')}`);
  return o;
};

function expectValid(objs: K8sObject[]): void {
  const problems = objs.flatMap((o) => validateObject(o));
  for (const o of objs.filter((x) => x.kind === 'ConfigMap')) {
    problems.push(
      ...[
        [deploymentOverlay, 'deployment'],
        [hpaOverlay, 'horizontalPodAutoscaler'],
        [pdbOverlay, 'podDisruptionBudget'],
      ].flatMap(([schema, key]) => {
        const r = (schema as typeof pdbOverlay).safeParse(parse(o.data![key as string]!));
        return r.success
          ? []
          : r.error.issues.map(
              (i) => `ConfigMap ${o.metadata.name} ${key}: ${i.path.join('.')}: ${i.message}`,
            );
      }),
    );
  }
  expect(problems).toEqual([]);
}

describe('kubectl apply -k deploy/', () => {
  const objs = render('deploy');

  it('installs the class, its defaults, the controller and the CRD, each valid', () => {
    expect(objs.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'ClusterRole/node-waypoint-controller',
      'ClusterRoleBinding/node-waypoint-controller',
      'ConfigMap/node-waypoint-class-defaults',
      'CustomResourceDefinition/backendtrafficpolicies.waypoint.node-waypoint.io',
      'Deployment/node-waypoint-controller',
      'GatewayClass/node-waypoint',
      'Role/node-waypoint-controller',
      'RoleBinding/node-waypoint-controller',
      'Service/node-waypoint-controller',
      'ServiceAccount/node-waypoint-controller',
    ]);
    expectValid(objs);
    expect(find(objs, 'GatewayClass', 'node-waypoint').spec).toMatchObject({
      controllerName: 'istio.io/mesh-controller',
    });
    expect(find(objs, 'ConfigMap', 'node-waypoint-class-defaults').metadata).toMatchObject({
      namespace: 'istio-system',
      labels: { 'gateway.istio.io/defaults-for-class': 'node-waypoint' },
    });
  });

  it('the controller reads only, and runs `controller` with its identity from istiod', () => {
    const role = find(objs, 'ClusterRole', 'node-waypoint-controller') as unknown as {
      rules: Array<{ verbs: string[] }>;
    };
    expect(new Set(role.rules.flatMap((r) => r.verbs))).toEqual(new Set(['get', 'list', 'watch']));
    // ConfigMaps only in the root namespace (the mesh config), never cluster-wide.
    const rules = role.rules as Array<{ verbs: string[]; resources: string[] }>;
    expect(rules.flatMap((r) => r.resources)).not.toContain('configmaps');
    const rootRole = find(objs, 'Role', 'node-waypoint-controller') as unknown as {
      metadata: { namespace: string };
      rules: Array<{ verbs: string[]; resources: string[] }>;
    };
    expect(rootRole.metadata.namespace).toBe('istio-system');
    expect(rootRole.rules).toEqual([
      { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] },
    ]);
    const pod = find(objs, 'Deployment', 'node-waypoint-controller').spec as {
      replicas: number;
      template: {
        spec: { containers: Array<{ args: string[]; command?: string[] }>; volumes: Array<{ name: string }> };
      };
    };
    expect(pod.replicas).toBe(2);
    expect(pod.template.spec.containers[0]!.args).toEqual([
      'controller',
      '--listen',
      '0.0.0.0:15010',
      '--health',
      '0.0.0.0:15021',
    ]);
    expect(pod.template.spec.containers[0]!.command).toBeUndefined();
    expect(pod.template.spec.volumes.map((v) => v.name)).toEqual(
      expect.arrayContaining(['istio-token', 'istiod-ca-cert']),
    );
  });
});

describe('the default-waypoint overlay', () => {
  it('adds the same defaults for the class istio-waypoint', () => {
    const objs = render('deploy/overlays/default-waypoint');
    expectValid(objs);
    const ours = find(objs, 'ConfigMap', 'node-waypoint-class-defaults');
    const istio = find(objs, 'ConfigMap', 'node-waypoint-istio-waypoint-defaults');
    expect(istio.metadata.labels).toEqual({ 'gateway.istio.io/defaults-for-class': 'istio-waypoint' });
    expect(istio.data).toEqual(ours.data);
  });
});

describe("the class defaults over istiod's waypoint Deployment (strategic merge patch)", () => {
  const fixture = join(ROOT, 'test/fixtures/istiod-waypoint-deployment.yaml');
  const overlay = parse(
    find(render('deploy'), 'ConfigMap', 'node-waypoint-class-defaults').data!.deployment!,
  );
  const before = parse(readFileSync(fixture, 'utf8')) as { spec: { template: { spec: PodSpec } } };
  const after = JSON.parse(
    kubectl([
      'patch',
      '--local',
      '-f',
      fixture,
      '--type',
      'strategic',
      '-p',
      JSON.stringify(overlay),
      '-o',
      'json',
    ]),
  ) as typeof before;
  interface PodSpec {
    terminationGracePeriodSeconds: number;
    containers: Array<{
      name: string;
      image: string;
      args: string[];
      command?: string[];
      env: Array<{ name: string }>;
      volumeMounts: Array<{ mountPath: string }>;
      startupProbe: { failureThreshold: number; httpGet: unknown };
    }>;
    volumes: Array<{ name: string }>;
  }
  const pod = after.spec.template.spec;

  it('keeps one container istio-proxy with our image and args and no command', () => {
    expect(pod.containers.map((c) => c.name)).toEqual(['istio-proxy']);
    const c = pod.containers[0]!;
    expect(c.image).toBe('ghcr.io/node-waypoint/node-waypoint:0.1.0');
    expect(c.args).toEqual(['run']);
    expect(c.command).toBeUndefined();
    expect(pod.terminationGracePeriodSeconds).toBe(45);
    expect(c.startupProbe).toMatchObject({
      failureThreshold: 120,
      httpGet: { path: '/healthz/ready', port: 15021 },
    });
  });

  it("keeps Istio's env, volumes and mounts, and adds ours", () => {
    const c = pod.containers[0]!;
    const was = before.spec.template.spec;
    expect(c.env.map((e) => e.name)).toEqual(
      expect.arrayContaining([...was.containers[0]!.env.map((e) => e.name), 'WAYPOINT_CONTROLLER']),
    );
    expect(pod.volumes.map((v) => v.name)).toEqual(
      expect.arrayContaining([...was.volumes.map((v) => v.name), 'node-waypoint-tmp']),
    );
    expect(c.volumeMounts.map((m) => m.mountPath)).toEqual(
      expect.arrayContaining(['/var/run/secrets/tokens', '/var/run/secrets/istio', '/etc/istio/pod', '/tmp']),
    );
  });
});

describe("the README's walkthrough manifests", () => {
  it('are valid, and the Gateway is of class node-waypoint', () => {
    const objs = docs(readFileSync(join(ROOT, 'deploy/examples/waypoint.yaml'), 'utf8'));
    expectValid(objs);
    expect(find(objs, 'Gateway', 'waypoint').spec).toMatchObject({ gatewayClassName: 'node-waypoint' });
    expect(find(objs, 'Namespace', 'bank-of-anthos').metadata.labels).toMatchObject({
      'istio.io/use-waypoint': 'waypoint',
    });
  });
});
