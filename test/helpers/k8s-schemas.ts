// Schemas for the Kubernetes objects deploy/ installs, for the fields we set (no npm package ships
// the OpenAPI schemas of core/apps/autoscaling/policy/RBAC, Gateway API and Istio together as
// validators). Objects are strict where we write them, so a misspelt field fails, and every value
// has the type and enum of the API reference.
import { z } from 'zod';

const name = z.string().regex(/^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/);
const labels = z.record(z.string(), z.string());
const meta = (namespaced: boolean) =>
  z
    .object({
      name,
      ...(namespaced ? { namespace: name } : {}),
      labels: labels.optional(),
      annotations: labels.optional(),
    })
    .strict();
const obj = <A extends string, K extends string>(
  apiVersion: A,
  kind: K,
  namespaced: boolean,
  rest: z.ZodRawShape,
) =>
  z
    .object({ apiVersion: z.literal(apiVersion), kind: z.literal(kind), metadata: meta(namespaced), ...rest })
    .strict();

const port = z.number().int().min(1).max(65535);
const envVar = z
  .object({
    name: z.string().min(1),
    value: z.string().optional(),
    valueFrom: z
      .object({ fieldRef: z.object({ fieldPath: z.string() }).strict().optional() })
      .strict()
      .optional(),
  })
  .strict();
const probe = z
  .object({
    httpGet: z
      .object({
        path: z.string(),
        port: z.union([port, z.string()]),
        scheme: z.enum(['HTTP', 'HTTPS']).optional(),
      })
      .strict()
      .optional(),
    initialDelaySeconds: z.number().int().min(0).optional(),
    periodSeconds: z.number().int().min(1).optional(),
    failureThreshold: z.number().int().min(1).optional(),
    successThreshold: z.number().int().min(1).optional(),
    timeoutSeconds: z.number().int().min(1).optional(),
  })
  .strict();
const volumeMount = z
  .object({ name, mountPath: z.string().startsWith('/'), readOnly: z.boolean().optional() })
  .strict();
const quantity = z.union([z.string().regex(/^\d+(\.\d+)?(m|Ki|Mi|Gi)?$/), z.number()]);
export const container = z
  .object({
    name,
    image: z.string().optional(),
    command: z.array(z.string()).optional(),
    args: z.array(z.string()).optional(),
    env: z.array(envVar).optional(),
    ports: z
      .array(
        z
          .object({
            name: z.string().max(15),
            containerPort: port,
            protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional(),
          })
          .strict(),
      )
      .optional(),
    readinessProbe: probe.optional(),
    startupProbe: probe.optional(),
    lifecycle: z
      .object({
        preStop: z.object({ sleep: z.object({ seconds: z.number().int().min(1) }).strict() }).strict(),
      })
      .strict()
      .optional(),
    resources: z
      .object({
        requests: z.partialRecord(z.enum(['cpu', 'memory']), quantity).optional(),
        limits: z.partialRecord(z.enum(['cpu', 'memory']), quantity).optional(),
      })
      .strict()
      .optional(),
    securityContext: z
      .object({
        allowPrivilegeEscalation: z.boolean(),
        readOnlyRootFilesystem: z.boolean(),
        capabilities: z.object({ drop: z.array(z.string()) }).strict(),
      })
      .strict()
      .optional(),
    volumeMounts: z.array(volumeMount).optional(),
  })
  .strict();
const volume = z
  .object({
    name,
    emptyDir: z
      .object({ medium: z.enum(['', 'Memory']).optional(), sizeLimit: quantity.optional() })
      .strict()
      .optional(),
    configMap: z.object({ name }).strict().optional(),
    projected: z
      .object({
        sources: z.array(
          z
            .object({
              serviceAccountToken: z
                .object({
                  audience: z.string(),
                  expirationSeconds: z.number().int().min(600),
                  path: z.string(),
                })
                .strict(),
            })
            .strict(),
        ),
      })
      .strict()
      .optional(),
  })
  .strict();
export const podSpec = z
  .object({
    serviceAccountName: name.optional(),
    terminationGracePeriodSeconds: z.number().int().min(0).optional(),
    securityContext: z
      .object({ runAsNonRoot: z.boolean(), runAsUser: z.number().int(), runAsGroup: z.number().int() })
      .strict()
      .optional(),
    containers: z.array(container).min(1),
    volumes: z.array(volume).optional(),
  })
  .strict();
/** The `deployment` overlay of a class-defaults ConfigMap: a partial Deployment. */
export const deploymentOverlay = z
  .object({ spec: z.object({ template: z.object({ spec: podSpec }).strict() }).strict() })
  .strict();
const selector = z.object({ matchLabels: labels }).strict();
const policyRule = z
  .object({
    apiGroups: z.array(z.string()),
    resources: z.array(z.string()),
    verbs: z.array(z.enum(['get', 'list', 'watch'])),
  })
  .strict();
const crossRef = z.object({ kind: z.string(), group: z.string(), name }).strict();

export const hpaOverlay = z
  .object({
    spec: z
      .object({
        minReplicas: z.number().int().min(1),
        maxReplicas: z.number().int().min(1),
        metrics: z.array(
          z
            .object({
              type: z.literal('Resource'),
              resource: z
                .object({
                  name: z.enum(['cpu', 'memory']),
                  target: z
                    .object({ type: z.literal('Utilization'), averageUtilization: z.number().int().min(1) })
                    .strict(),
                })
                .strict(),
            })
            .strict(),
        ),
        behavior: z
          .object(
            Object.fromEntries(
              ['scaleDown', 'scaleUp'].map((k) => [
                k,
                z
                  .object({
                    stabilizationWindowSeconds: z.number().int().min(0).max(3600),
                    policies: z
                      .array(
                        z
                          .object({
                            type: z.enum(['Pods', 'Percent']),
                            value: z.number().int().min(1),
                            periodSeconds: z.number().int().min(1).max(1800),
                          })
                          .strict(),
                      )
                      .min(1),
                  })
                  .strict(),
              ]),
            ),
          )
          .strict(),
      })
      .strict(),
  })
  .strict();
export const pdbOverlay = z
  .object({ spec: z.object({ maxUnavailable: z.union([z.number().int().min(0), z.string()]) }).strict() })
  .strict();

/** The istiod overlay keys (kubernetes.md §1a); any other key fails the whole render. */
const classDefaultsData = z
  .object({ deployment: z.string(), horizontalPodAutoscaler: z.string(), podDisruptionBudget: z.string() })
  .strict();

export const SCHEMAS: Record<string, z.ZodType> = {
  'v1/ConfigMap': obj('v1', 'ConfigMap', true, { data: classDefaultsData }),
  'v1/ServiceAccount': obj('v1', 'ServiceAccount', true, {}),
  'v1/Namespace': obj('v1', 'Namespace', false, {}),
  'v1/Service': obj('v1', 'Service', true, {
    spec: z
      .object({
        selector: labels,
        ports: z
          .array(
            z
              .object({
                name: z.string(),
                port,
                targetPort: z.union([port, z.string()]),
                appProtocol: z.string().optional(),
              })
              .strict(),
          )
          .min(1),
      })
      .strict(),
  }),
  'apps/v1/Deployment': obj('apps/v1', 'Deployment', true, {
    spec: z
      .object({
        replicas: z.number().int().min(0),
        selector,
        template: z.object({ metadata: z.object({ labels }).strict(), spec: podSpec }).strict(),
      })
      .strict(),
  }),
  'rbac.authorization.k8s.io/v1/ClusterRole': obj('rbac.authorization.k8s.io/v1', 'ClusterRole', false, {
    rules: z.array(policyRule),
  }),
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': obj(
    'rbac.authorization.k8s.io/v1',
    'ClusterRoleBinding',
    false,
    {
      roleRef: z
        .object({ apiGroup: z.literal('rbac.authorization.k8s.io'), kind: z.literal('ClusterRole'), name })
        .strict(),
      subjects: z.array(z.object({ kind: z.literal('ServiceAccount'), name, namespace: name }).strict()),
    },
  ),
  'rbac.authorization.k8s.io/v1/Role': obj('rbac.authorization.k8s.io/v1', 'Role', true, {
    rules: z.array(policyRule),
  }),
  'rbac.authorization.k8s.io/v1/RoleBinding': obj('rbac.authorization.k8s.io/v1', 'RoleBinding', true, {
    roleRef: z
      .object({ apiGroup: z.literal('rbac.authorization.k8s.io'), kind: z.literal('Role'), name })
      .strict(),
    subjects: z.array(z.object({ kind: z.literal('ServiceAccount'), name, namespace: name }).strict()),
  }),
  'gateway.networking.k8s.io/v1/GatewayClass': obj('gateway.networking.k8s.io/v1', 'GatewayClass', false, {
    spec: z
      .object({
        controllerName: z.string().regex(/^[a-z0-9.-]+\/[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$/),
        description: z.string().max(64).optional(),
      })
      .strict(),
  }),
  'gateway.networking.k8s.io/v1/Gateway': obj('gateway.networking.k8s.io/v1', 'Gateway', true, {
    spec: z
      .object({
        gatewayClassName: name,
        listeners: z.array(z.object({ name, port, protocol: z.string() }).strict()).min(1),
      })
      .strict(),
  }),
  'security.istio.io/v1/AuthorizationPolicy': obj('security.istio.io/v1', 'AuthorizationPolicy', true, {
    spec: z
      .object({
        targetRefs: z.array(crossRef).optional(),
        selector: selector.optional(),
        action: z.enum(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM']).optional(),
        rules: z
          .array(
            z
              .object({
                from: z
                  .array(z.object({ source: z.record(z.string(), z.array(z.string())) }).strict())
                  .optional(),
                to: z
                  .array(z.object({ operation: z.record(z.string(), z.array(z.string())) }).strict())
                  .optional(),
              })
              .strict(),
          )
          .optional(),
      })
      .strict(),
  }),
  'apiextensions.k8s.io/v1/CustomResourceDefinition': z
    .object({
      apiVersion: z.literal('apiextensions.k8s.io/v1'),
      kind: z.literal('CustomResourceDefinition'),
      metadata: meta(false),
      spec: z
        .object({
          group: z.string(),
          names: z.object({ kind: z.string(), plural: z.string() }).passthrough(),
          scope: z.enum(['Namespaced', 'Cluster']),
          versions: z
            .array(
              z
                .object({
                  name: z.string(),
                  served: z.boolean(),
                  storage: z.boolean(),
                  schema: z.object({
                    openAPIV3Schema: z.object({ type: z.literal('object') }).passthrough(),
                  }),
                })
                .passthrough(),
            )
            .min(1),
        })
        .strict(),
    })
    .strict(),
};

/** Validates one object; returns what is wrong, in words naming kind/name and field. */
export function validateObject(o: {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string };
}): string[] {
  const key = `${o.apiVersion}/${o.kind}`;
  const schema = SCHEMAS[key];
  if (!schema) return [`${key} ${o.metadata?.name}: no schema for this kind`];
  const r = schema.safeParse(o);
  return r.success
    ? []
    : r.error.issues.map((i) => `${key} ${o.metadata?.name}: ${i.path.join('.')}: ${i.message}`);
}
