// GRPCRoute (gateway.networking.k8s.io v1 and v1alpha2). Shares parentRefs, backendRefs and filters
// with HTTPRoute; filter types the waypoint does not implement for gRPC are kept for the compiler
// to report. Defaults: method and header match type Exact.
import { z } from 'zod';
import { objectMeta, show } from './common.ts';
import {
  backendRefSchema,
  headerMatchSchema,
  hostnames,
  httpRouteFilterSchema,
  parentRefSchema,
  withDefault,
} from './http-route.ts';
import type { KindDefinition } from './registry.ts';

const GRPC_SERVICE = /^\.?[A-Za-z_][A-Za-z_0-9]*(\.[A-Za-z_][A-Za-z_0-9]*)*$/;
const GRPC_METHOD = /^[A-Za-z_][A-Za-z_0-9]*$/;

export const grpcMethodMatchSchema = z
  .looseObject({
    type: withDefault(z.enum(['Exact', 'RegularExpression']), 'Exact'),
    service: z.string().max(1024).nullish(),
    method: z.string().max(1024).nullish(),
  })
  .superRefine((m, ctx) => {
    if (m.type !== 'Exact') return;
    if (m.service == null && m.method == null) {
      ctx.addIssue({
        code: 'custom',
        path: ['service'],
        message: 'one of service or method is required for type Exact',
      });
    }
    if (m.service != null && !GRPC_SERVICE.test(m.service)) {
      ctx.addIssue({
        code: 'custom',
        path: ['service'],
        message: `expected a gRPC service name, got ${show(m.service)}`,
      });
    }
    if (m.method != null && !GRPC_METHOD.test(m.method)) {
      ctx.addIssue({
        code: 'custom',
        path: ['method'],
        message: `expected a gRPC method name, got ${show(m.method)}`,
      });
    }
  });

export const grpcRouteMatchSchema = z.looseObject({
  method: grpcMethodMatchSchema.nullish(),
  headers: z.array(headerMatchSchema).max(16).nullish(),
});

export const grpcRouteRuleSchema = z.looseObject({
  name: z.string().min(1).max(253).nullish(),
  matches: z.array(grpcRouteMatchSchema).max(64).nullish(),
  filters: z.array(httpRouteFilterSchema).max(16).nullish(),
  backendRefs: z.array(backendRefSchema).max(16).nullish(),
  sessionPersistence: z.looseObject({}).nullish(),
});

export const grpcRouteSchema = z.looseObject({
  metadata: objectMeta,
  spec: z.looseObject({
    parentRefs: z.array(parentRefSchema).max(32).nullish(),
    hostnames: hostnames.nullish(),
    rules: z.array(grpcRouteRuleSchema).max(16).nullish(),
  }),
});

export type GrpcRoute = z.infer<typeof grpcRouteSchema>;
export type GrpcRouteRule = z.infer<typeof grpcRouteRuleSchema>;
export type GrpcRouteMatch = z.infer<typeof grpcRouteMatchSchema>;
export type GrpcMethodMatch = z.infer<typeof grpcMethodMatchSchema>;

export const grpcRouteKind: KindDefinition<GrpcRoute> = {
  kind: 'GRPCRoute',
  groups: ['gateway.networking.k8s.io'],
  versions: ['v1', 'v1alpha2'],
  namespaced: true,
  schema: grpcRouteSchema,
};
