// DestinationRule (networking.istio.io v1, v1beta1, v1alpha3): load balancing, connection pools,
// outlier detection and retry budget for the waypoint's per-Service clusters. Protobuf wrapper
// fields (UInt32Value, ...) arrive as plain numbers in JSON. `tls`, `localityLbSetting`,
// `workloadSelector` and warmup are accepted as written; the compiler decides what it honours.
import { z } from 'zod';
import { dnsLabel, labels, objectMeta, show } from './common.ts';
import { istioDuration } from './duration.ts';
import { intRange } from './http-route.ts';
import type { KindDefinition } from './registry.ts';
import { percentSchema, portSelectorSchema } from './virtual-service.ts';

const int32 = intRange(0, 2 ** 31 - 1);
const uint32 = intRange(0, 2 ** 32 - 1);

const HASH_KEYS = ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'] as const;

const consistentHashSchema = z
  .looseObject({
    httpHeaderName: z.string().min(1).nullish(),
    httpCookie: z
      .looseObject({ name: z.string().min(1), path: z.string().nullish(), ttl: istioDuration.nullish() })
      .nullish(),
    useSourceIp: z.boolean().nullish(),
    httpQueryParameterName: z.string().min(1).nullish(),
    ringHash: z.looseObject({ minimumRingSize: uint32.nullish() }).nullish(),
    maglev: z.looseObject({ tableSize: uint32.nullish() }).nullish(),
    /** Deprecated spelling of ringHash.minimumRingSize. */
    minimumRingSize: uint32.nullish(),
  })
  .superRefine((h, ctx) => {
    const keys = HASH_KEYS.filter((k) => h[k] != null && h[k] !== false);
    if (keys.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message:
          keys.length === 0
            ? `expected one of ${HASH_KEYS.join(', ')}`
            : `only one of ${keys.join(', ')} may be set`,
      });
    }
    if (h.ringHash != null && h.maglev != null) {
      ctx.addIssue({
        code: 'custom',
        path: ['maglev'],
        message: 'only one of ringHash or maglev may be set',
      });
    }
  });

export const loadBalancerSchema = z
  .looseObject({
    simple: z
      .enum(['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST'])
      .nullish(),
    consistentHash: consistentHashSchema.nullish(),
    localityLbSetting: z.unknown().optional(),
    warmupDurationSecs: istioDuration.nullish(),
    warmup: z.unknown().optional(),
  })
  .superRefine((lb, ctx) => {
    if (lb.simple != null && lb.consistentHash != null) {
      ctx.addIssue({
        code: 'custom',
        path: ['consistentHash'],
        message: 'only one of simple or consistentHash may be set',
      });
    }
  });

export const connectionPoolSchema = z.looseObject({
  tcp: z
    .looseObject({
      maxConnections: int32.nullish(),
      connectTimeout: istioDuration.nullish(),
      tcpKeepalive: z
        .looseObject({
          probes: uint32.nullish(),
          time: istioDuration.nullish(),
          interval: istioDuration.nullish(),
        })
        .nullish(),
      maxConnectionDuration: istioDuration.nullish(),
      idleTimeout: istioDuration.nullish(),
    })
    .nullish(),
  http: z
    .looseObject({
      http1MaxPendingRequests: int32.nullish(),
      http2MaxRequests: int32.nullish(),
      maxRequestsPerConnection: int32.nullish(),
      maxRetries: int32.nullish(),
      idleTimeout: istioDuration.nullish(),
      h2UpgradePolicy: z.enum(['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE']).nullish(),
      useClientProtocol: z.boolean().nullish(),
      maxConcurrentStreams: int32.nullish(),
    })
    .nullish(),
});

const percentInt = z.custom<number>(
  (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 100,
  {
    error: (iss) =>
      iss.input === undefined ? 'required' : `expected an integer 0-100, got ${show(iss.input)}`,
  },
);

export const outlierDetectionSchema = z.looseObject({
  /** Deprecated: consecutive5xxErrors replaces it. */
  consecutiveErrors: int32.nullish(),
  consecutive5xxErrors: uint32.nullish(),
  consecutiveGatewayErrors: uint32.nullish(),
  consecutiveLocalOriginFailures: uint32.nullish(),
  splitExternalLocalOriginErrors: z.boolean().nullish(),
  interval: istioDuration.nullish(),
  baseEjectionTime: istioDuration.nullish(),
  maxEjectionPercent: percentInt.nullish(),
  minHealthPercent: percentInt.nullish(),
});

const retryBudgetSchema = z.looseObject({
  percent: percentSchema.nullish(),
  minRetryConcurrency: uint32.nullish(),
});

const policyFields = {
  loadBalancer: loadBalancerSchema.nullish(),
  connectionPool: connectionPoolSchema.nullish(),
  outlierDetection: outlierDetectionSchema.nullish(),
  tls: z.unknown().optional(),
};

export const portTrafficPolicySchema = z.looseObject({ port: portSelectorSchema.nullish(), ...policyFields });

export const trafficPolicySchema = z.looseObject({
  ...policyFields,
  portLevelSettings: z.array(portTrafficPolicySchema).nullish(),
  retryBudget: retryBudgetSchema.nullish(),
  tunnel: z.unknown().optional(),
  proxyProtocol: z.unknown().optional(),
});

export const subsetSchema = z.looseObject({
  name: dnsLabel,
  labels: labels.nullish(),
  trafficPolicy: trafficPolicySchema.nullish(),
});

export const destinationRuleSchema = z.looseObject({
  metadata: objectMeta,
  spec: z
    .looseObject({
      host: z.string().min(1),
      trafficPolicy: trafficPolicySchema.nullish(),
      subsets: z.array(subsetSchema).nullish(),
      exportTo: z.array(z.string()).nullish(),
      workloadSelector: z.unknown().optional(),
    })
    .superRefine((spec, ctx) => {
      const seen = new Set<string>();
      spec.subsets?.forEach((s, i) => {
        if (seen.has(s.name)) {
          ctx.addIssue({
            code: 'custom',
            path: ['subsets', i, 'name'],
            message: `duplicate subset name ${show(s.name)}`,
          });
        }
        seen.add(s.name);
      });
    }),
});

export type DestinationRule = z.infer<typeof destinationRuleSchema>;
export type DestinationRuleSpec = DestinationRule['spec'];
export type TrafficPolicySpec = z.infer<typeof trafficPolicySchema>;
export type PortTrafficPolicySpec = z.infer<typeof portTrafficPolicySchema>;
export type LoadBalancerSpec = z.infer<typeof loadBalancerSchema>;
export type ConnectionPoolSpec = z.infer<typeof connectionPoolSchema>;
export type OutlierDetectionSpec = z.infer<typeof outlierDetectionSchema>;
export type SubsetSpec = z.infer<typeof subsetSchema>;

export const destinationRuleKind: KindDefinition<DestinationRule> = {
  kind: 'DestinationRule',
  groups: ['networking.istio.io'],
  versions: ['v1', 'v1beta1', 'v1alpha3'],
  namespaced: true,
  schema: destinationRuleSchema,
};
