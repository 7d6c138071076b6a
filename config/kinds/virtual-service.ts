// VirtualService (networking.istio.io v1, v1beta1, v1alpha3). The schema enforces the checks
// Istio's own validation makes (pilot/pkg/config/validation) that a user would otherwise discover
// only as odd routing: one action per http rule, redirect codes, directResponse status, percentages,
// durations. `tls` rules are kept raw; `delegate` is rejected because the waypoint cannot honour it.
import { z } from 'zod';
import { labels, objectMeta, show } from './common.ts';
import { istioDuration } from './duration.ts';
import { intRange } from './http-route.ts';
import type { KindDefinition } from './registry.ts';

/** Istio Percent: a double in [0, 100]. */
export const percentSchema = z.looseObject({
  value: z.custom<number>((v) => typeof v === 'number' && v >= 0 && v <= 100, {
    error: (iss) =>
      iss.input === undefined ? 'required' : `expected a number 0-100, got ${show(iss.input)}`,
  }),
});

export const portSelectorSchema = z.looseObject({ number: intRange(1, 65535) });

const STRING_MATCH_KEYS = ['exact', 'prefix', 'regex'] as const;

const stringMatchShape = z.looseObject({
  exact: z.string().nullish(),
  prefix: z.string().nullish(),
  regex: z.string().nullish(),
});

function setKeys(m: z.infer<typeof stringMatchShape>): string[] {
  return STRING_MATCH_KEYS.filter((k) => m[k] != null);
}

/** Istio StringMatch: exactly one of exact, prefix, regex. */
export const stringMatchSchema = stringMatchShape.superRefine((m, ctx) => {
  const keys = setKeys(m);
  if (keys.length !== 1) {
    ctx.addIssue({
      code: 'custom',
      path: [],
      message:
        keys.length === 0
          ? 'expected one of exact, prefix or regex'
          : `only one of ${keys.join(', ')} may be set`,
    });
  }
});

/** A header or query-param StringMatch: at most one of exact, prefix, regex; `{}` means present. */
export const presenceMatchSchema = stringMatchShape.superRefine((m, ctx) => {
  const keys = setKeys(m);
  if (keys.length > 1)
    ctx.addIssue({ code: 'custom', path: [], message: `only one of ${keys.join(', ')} may be set` });
});

const headerMatchMap = z.record(z.string(), presenceMatchSchema).superRefine((map, ctx) => {
  for (const key of Object.keys(map)) {
    if (key !== key.toLowerCase()) {
      ctx.addIssue({ code: 'custom', path: [key], message: 'header names must be lower case' });
    }
  }
});

export const httpMatchSchema = z.looseObject({
  name: z.string().nullish(),
  uri: stringMatchSchema.nullish(),
  scheme: stringMatchSchema.nullish(),
  method: stringMatchSchema.nullish(),
  authority: stringMatchSchema.nullish(),
  headers: headerMatchMap.nullish(),
  withoutHeaders: headerMatchMap.nullish(),
  queryParams: z.record(z.string(), presenceMatchSchema).nullish(),
  port: intRange(1, 65535).nullish(),
  ignoreUriCase: z.boolean().nullish(),
  sourceLabels: labels.nullish(),
  gateways: z.array(z.string()).nullish(),
  sourceNamespace: z.string().nullish(),
  statPrefix: z.string().nullish(),
});

export const destinationSchema = z.looseObject({
  host: z.string().min(1),
  subset: z.string().nullish(),
  port: portSelectorSchema.nullish(),
});

const headerOperations = z.looseObject({
  set: z.record(z.string(), z.string()).nullish(),
  add: z.record(z.string(), z.string()).nullish(),
  remove: z.array(z.string()).nullish(),
});

export const headersSchema = z.looseObject({
  request: headerOperations.nullish(),
  response: headerOperations.nullish(),
});

const weight = intRange(0, 2 ** 31 - 1);

export const httpRouteDestinationSchema = z.looseObject({
  destination: destinationSchema,
  weight: weight.nullish(),
  headers: headersSchema.nullish(),
});

const redirectSchema = z
  .looseObject({
    uri: z.string().nullish(),
    authority: z.string().nullish(),
    port: intRange(1, 65535).nullish(),
    derivePort: z.enum(['FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT']).nullish(),
    scheme: z.string().nullish(),
    redirectCode: z
      .union([z.literal(301), z.literal(302), z.literal(303), z.literal(307), z.literal(308)])
      .nullish(),
  })
  .superRefine((r, ctx) => {
    if (r.port != null && r.derivePort != null) {
      ctx.addIssue({
        code: 'custom',
        path: ['derivePort'],
        message: 'only one of port or derivePort may be set',
      });
    }
  });

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

const directResponseSchema = z.looseObject({
  status: intRange(200, 599),
  body: z
    .looseObject({
      string: z.string().nullish(),
      bytes: z
        .string()
        .refine((s) => s.length % 4 === 0 && BASE64.test(s), { message: 'expected base64' })
        .nullish(),
    })
    .superRefine((b, ctx) => {
      if (b.string != null && b.bytes != null) {
        ctx.addIssue({ code: 'custom', path: ['bytes'], message: 'only one of string or bytes may be set' });
      }
    })
    .nullish(),
});

const rewriteSchema = z
  .looseObject({
    uri: z.string().nullish(),
    authority: z.string().nullish(),
    uriRegexRewrite: z.looseObject({ match: z.string().min(1), rewrite: z.string() }).nullish(),
  })
  .superRefine((r, ctx) => {
    if (r.uri != null && r.uriRegexRewrite != null) {
      ctx.addIssue({
        code: 'custom',
        path: ['uriRegexRewrite'],
        message: 'only one of uri or uriRegexRewrite may be set',
      });
    }
  });

const retriesSchema = z.looseObject({
  attempts: intRange(0, 2 ** 31 - 1).nullish(),
  perTryTimeout: istioDuration.nullish(),
  retryOn: z.string().nullish(),
  retryRemoteLocalities: z.boolean().nullish(),
  retryIgnorePreviousHosts: z.boolean().nullish(),
  backoff: istioDuration.nullish(),
});

const faultSchema = z.looseObject({
  delay: z
    .looseObject({
      fixedDelay: istioDuration.nullish(),
      exponentialDelay: istioDuration.nullish(),
      percentage: percentSchema.nullish(),
      percent: intRange(0, 100).nullish(),
    })
    .superRefine((d, ctx) => {
      if (d.fixedDelay == null) ctx.addIssue({ code: 'custom', path: ['fixedDelay'], message: 'required' });
    })
    .nullish(),
  abort: z
    .looseObject({
      httpStatus: intRange(200, 599).nullish(),
      grpcStatus: z.string().nullish(),
      http2Error: z.string().nullish(),
      percentage: percentSchema.nullish(),
    })
    .superRefine((a, ctx) => {
      if (a.httpStatus == null && a.grpcStatus == null) {
        ctx.addIssue({
          code: 'custom',
          path: ['httpStatus'],
          message: 'one of httpStatus or grpcStatus is required',
        });
      }
    })
    .nullish(),
});

const corsPolicySchema = z.looseObject({
  allowOrigins: z.array(stringMatchSchema).nullish(),
  /** Deprecated exact origins; still honoured. */
  allowOrigin: z.array(z.string()).nullish(),
  allowMethods: z.array(z.string()).nullish(),
  allowHeaders: z.array(z.string()).nullish(),
  exposeHeaders: z.array(z.string()).nullish(),
  maxAge: istioDuration.nullish(),
  allowCredentials: z.boolean().nullish(),
  unmatchedPreflights: z.enum(['UNSPECIFIED', 'FORWARD', 'IGNORE']).nullish(),
});

const ACTIONS = ['route', 'redirect', 'directResponse', 'delegate'] as const;

export const httpRouteVsSchema = z
  .looseObject({
    name: z.string().nullish(),
    match: z.array(httpMatchSchema).nullish(),
    route: z.array(httpRouteDestinationSchema).nullish(),
    redirect: redirectSchema.nullish(),
    directResponse: directResponseSchema.nullish(),
    delegate: z.looseObject({}).nullish(),
    rewrite: rewriteSchema.nullish(),
    timeout: istioDuration.nullish(),
    retries: retriesSchema.nullish(),
    fault: faultSchema.nullish(),
    mirror: destinationSchema.nullish(),
    mirrors: z
      .array(z.looseObject({ destination: destinationSchema, percentage: percentSchema.nullish() }))
      .nullish(),
    mirrorPercentage: percentSchema.nullish(),
    mirrorPercent: intRange(0, 100).nullish(),
    corsPolicy: corsPolicySchema.nullish(),
    headers: headersSchema.nullish(),
  })
  .superRefine((rule, ctx) => {
    if (rule.delegate != null) {
      ctx.addIssue({
        code: 'custom',
        path: ['delegate'],
        message: 'delegate is not supported by the waypoint',
      });
      return;
    }
    const set = ACTIONS.filter((k) => (k === 'route' ? (rule.route?.length ?? 0) > 0 : rule[k] != null));
    if (set.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['route'],
        message: 'one of route, redirect or directResponse is required',
      });
    } else if (set.length > 1) {
      ctx.addIssue({
        code: 'custom',
        path: [set[1] as string],
        message: `only one of ${set.join(', ')} may be set`,
      });
    }
    if (rule.mirror != null && rule.mirrors != null) {
      ctx.addIssue({
        code: 'custom',
        path: ['mirrors'],
        message: 'only one of mirror or mirrors may be set',
      });
    }
  });

const l4Match = z.looseObject({
  destinationSubnets: z.array(z.string()).nullish(),
  port: intRange(1, 65535).nullish(),
  sourceLabels: labels.nullish(),
  gateways: z.array(z.string()).nullish(),
  sourceNamespace: z.string().nullish(),
});

export const tcpRouteVsSchema = z.looseObject({
  match: z.array(l4Match).nullish(),
  route: z.array(z.looseObject({ destination: destinationSchema, weight: weight.nullish() })).nullish(),
});

export const virtualServiceSchema = z.looseObject({
  metadata: objectMeta,
  spec: z.looseObject({
    hosts: z.array(z.string().min(1)).nullish(),
    gateways: z.array(z.string()).nullish(),
    exportTo: z.array(z.string()).nullish(),
    http: z.array(httpRouteVsSchema).nullish(),
    tcp: z.array(tcpRouteVsSchema).nullish(),
    tls: z.array(z.unknown()).nullish(),
  }),
});

export type VirtualService = z.infer<typeof virtualServiceSchema>;
export type VirtualServiceSpec = VirtualService['spec'];
export type HttpRouteVs = z.infer<typeof httpRouteVsSchema>;
export type HttpMatchVs = z.infer<typeof httpMatchSchema>;
export type HttpRouteDestination = z.infer<typeof httpRouteDestinationSchema>;
export type TcpRouteVs = z.infer<typeof tcpRouteVsSchema>;
export type StringMatch = z.infer<typeof stringMatchSchema>;
export type Destination = z.infer<typeof destinationSchema>;
export type HeaderOperationsVs = z.infer<typeof headersSchema>;
export type Percent = z.infer<typeof percentSchema>;

export const virtualServiceKind: KindDefinition<VirtualService> = {
  kind: 'VirtualService',
  groups: ['networking.istio.io'],
  versions: ['v1', 'v1beta1', 'v1alpha3'],
  namespaced: true,
  schema: virtualServiceSchema,
};
