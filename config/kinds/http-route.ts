// HTTPRoute (gateway.networking.k8s.io v1 and v1beta1) and the pieces GRPCRoute and TCPRoute share:
// parentRefs, backendRefs, header modifiers. The schema applies the CRD defaults the API server
// would (path PathPrefix "/", header match Exact, backendRef weight 1 and kind Service), and rejects
// what the CRD's OpenAPI and CEL rules reject. Filter types are open strings: a type the waypoint
// does not implement is reported by the routing compiler as a route condition, not rejected here.
import { z } from 'zod';
import { objectMeta, show } from './common.ts';
import { gatewayDuration, parseGatewayDuration } from './duration.ts';
import type { KindDefinition } from './registry.ts';

/** An integer in [min, max]; the message names the range. */
export function intRange(min: number, max: number) {
  return z.custom<number>((v) => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max, {
    error: (iss) =>
      iss.input === undefined ? 'required' : `expected an integer ${min}-${max}, got ${show(iss.input)}`,
  });
}

/** `schema`, or `fallback` when the field is absent or null (the CRD default). */
export function withDefault<T extends z.ZodType>(schema: T, fallback: z.output<T>) {
  return schema.nullish().transform((v): z.output<T> => (v ?? fallback) as z.output<T>);
}

const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;

/** An HTTP header name: an RFC 7230 token of at most 256 characters. */
export const headerName = z.custom<string>(
  (v) => typeof v === 'string' && v.length <= 256 && HEADER_NAME.test(v),
  {
    error: (iss) =>
      iss.input === undefined ? 'required' : `expected an HTTP header name (a token), got ${show(iss.input)}`,
  },
);

const portNumber = intRange(1, 65535);

/**
 * A route's parent. The CRD defaults group to gateway.networking.k8s.io and kind to Gateway when
 * absent; a mesh route names a Service with `group: ""`, which is kept as given.
 */
export const parentRefSchema = z.looseObject({
  group: withDefault(z.string(), 'gateway.networking.k8s.io'),
  kind: withDefault(z.string().min(1), 'Gateway'),
  namespace: z.string().nullish(),
  name: z.string().min(1),
  sectionName: z.string().nullish(),
  port: portNumber.nullish(),
});

const headerValue = z.looseObject({ name: headerName, value: z.string().max(4096) });

export const headerModifierSchema = z.looseObject({
  set: z.array(headerValue).max(16).nullish(),
  add: z.array(headerValue).max(16).nullish(),
  remove: z.array(headerName).max(16).nullish(),
});

const backendObjectRef = z.looseObject({
  group: withDefault(z.string(), ''),
  kind: withDefault(z.string().min(1), 'Service'),
  name: z.string().min(1),
  namespace: z.string().nullish(),
  port: portNumber.nullish(),
});

function requirePortForService(
  ref: { group: string; kind: string; port?: number | null | undefined },
  ctx: z.RefinementCtx,
) {
  if (ref.group === '' && ref.kind === 'Service' && ref.port == null) {
    ctx.addIssue({ code: 'custom', path: ['port'], message: 'required for a Service backend' });
  }
}

const pathModifier = z
  .looseObject({
    type: z.enum(['ReplaceFullPath', 'ReplacePrefixMatch']),
    replaceFullPath: z.string().max(1024).nullish(),
    replacePrefixMatch: z.string().max(1024).nullish(),
  })
  .superRefine((p, ctx) => {
    const field = p.type === 'ReplaceFullPath' ? 'replaceFullPath' : 'replacePrefixMatch';
    if (p[field] == null)
      ctx.addIssue({ code: 'custom', path: [field], message: `required for type ${p.type}` });
  });

const fractionSchema = z
  .looseObject({
    numerator: intRange(0, 2 ** 31 - 1),
    denominator: withDefault(intRange(1, 2 ** 31 - 1), 100),
  })
  .superRefine((f, ctx) => {
    if (f.numerator > f.denominator) {
      ctx.addIssue({ code: 'custom', path: ['numerator'], message: 'must not exceed denominator' });
    }
  });

const requestMirrorSchema = z
  .looseObject({
    backendRef: backendObjectRef.superRefine(requirePortForService),
    percent: intRange(0, 100).nullish(),
    fraction: fractionSchema.nullish(),
  })
  .superRefine((m, ctx) => {
    if (m.percent != null && m.fraction != null) {
      ctx.addIssue({
        code: 'custom',
        path: ['fraction'],
        message: 'only one of percent or fraction may be set',
      });
    }
  });

const redirectSchema = z.looseObject({
  scheme: z.enum(['http', 'https']).nullish(),
  hostname: z.string().min(1).max(253).nullish(),
  path: pathModifier.nullish(),
  port: portNumber.nullish(),
  statusCode: z
    .union([z.literal(301), z.literal(302), z.literal(303), z.literal(307), z.literal(308)])
    .nullish(),
});

const corsSchema = z.looseObject({
  allowOrigins: z.array(z.string()).max(64).nullish(),
  allowMethods: z.array(z.string()).max(9).nullish(),
  allowHeaders: z.array(z.string()).max(64).nullish(),
  exposeHeaders: z.array(z.string()).max(64).nullish(),
  maxAge: withDefault(intRange(1, 2 ** 31 - 1), 5),
  allowCredentials: z.boolean().nullish(),
});

/** The configuration field each known filter type requires (CRD CEL rules). */
const FILTER_FIELD: Readonly<Record<string, string>> = {
  RequestHeaderModifier: 'requestHeaderModifier',
  ResponseHeaderModifier: 'responseHeaderModifier',
  RequestRedirect: 'requestRedirect',
  URLRewrite: 'urlRewrite',
  RequestMirror: 'requestMirror',
  CORS: 'cors',
  ExtensionRef: 'extensionRef',
  ExternalAuth: 'externalAuth',
};

export const httpRouteFilterSchema = z
  .looseObject({
    type: z.string().min(1),
    requestHeaderModifier: headerModifierSchema.nullish(),
    responseHeaderModifier: headerModifierSchema.nullish(),
    requestRedirect: redirectSchema.nullish(),
    urlRewrite: z
      .looseObject({ hostname: z.string().min(1).max(253).nullish(), path: pathModifier.nullish() })
      .nullish(),
    requestMirror: requestMirrorSchema.nullish(),
    cors: corsSchema.nullish(),
    extensionRef: z.looseObject({ group: z.string(), kind: z.string(), name: z.string() }).nullish(),
    externalAuth: z.looseObject({}).nullish(),
  })
  .superRefine((f, ctx) => {
    const field = FILTER_FIELD[f.type];
    if (field && (f as Record<string, unknown>)[field] == null) {
      ctx.addIssue({ code: 'custom', path: [field], message: `required for filter type ${f.type}` });
    }
  });

export const backendRefSchema = backendObjectRef
  .extend({
    weight: withDefault(intRange(0, 1_000_000), 1),
    filters: z.array(httpRouteFilterSchema).max(16).nullish(),
  })
  .superRefine(requirePortForService);

const pathMatchSchema = z
  .looseObject({
    type: withDefault(z.enum(['Exact', 'PathPrefix', 'RegularExpression']), 'PathPrefix'),
    value: withDefault(z.string().max(1024), '/'),
  })
  .superRefine((p, ctx) => {
    if (p.type !== 'RegularExpression' && !p.value.startsWith('/')) {
      ctx.addIssue({
        code: 'custom',
        path: ['value'],
        message: `must start with "/" for type ${p.type}, got ${show(p.value)}`,
      });
    }
  });

export const headerMatchSchema = z.looseObject({
  type: withDefault(z.enum(['Exact', 'RegularExpression']), 'Exact'),
  name: headerName,
  value: z.string().min(1).max(4096),
});

const DEFAULT_PATH = { type: 'PathPrefix', value: '/' } as const;

export const httpRouteMatchSchema = z.looseObject({
  path: withDefault(pathMatchSchema, { ...DEFAULT_PATH }),
  headers: z.array(headerMatchSchema).max(16).nullish(),
  queryParams: z
    .array(
      z.looseObject({
        type: withDefault(z.enum(['Exact', 'RegularExpression']), 'Exact'),
        name: z.string().min(1).max(256),
        value: z.string().min(1).max(1024),
      }),
    )
    .max(16)
    .nullish(),
  method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']).nullish(),
});

const timeoutsSchema = z
  .looseObject({ request: gatewayDuration.nullish(), backendRequest: gatewayDuration.nullish() })
  .superRefine((t, ctx) => {
    if (t.request == null || t.backendRequest == null) return;
    const request = parseGatewayDuration(t.request);
    // CEL: a zero request timeout means none, so any backendRequest fits under it.
    if (request !== 0 && parseGatewayDuration(t.backendRequest) > request) {
      ctx.addIssue({
        code: 'custom',
        path: ['backendRequest'],
        message: `must not be greater than timeouts.request (${t.backendRequest} > ${t.request})`,
      });
    }
  });

const retrySchema = z.looseObject({
  codes: z.array(intRange(400, 599)).nullish(),
  attempts: intRange(0, 2 ** 31 - 1).nullish(),
  backoff: gatewayDuration.nullish(),
});

export const httpRouteRuleSchema = z
  .looseObject({
    name: z.string().min(1).max(253).nullish(),
    matches: withDefault(z.array(httpRouteMatchSchema).max(64), [{ path: { ...DEFAULT_PATH } }]),
    filters: z.array(httpRouteFilterSchema).max(16).nullish(),
    backendRefs: z.array(backendRefSchema).max(16).nullish(),
    timeouts: timeoutsSchema.nullish(),
    retry: retrySchema.nullish(),
    // Accepted so routes using it load; the waypoint does not implement session persistence.
    sessionPersistence: z.looseObject({}).nullish(),
  })
  .superRefine((rule, ctx) => {
    // The v1 CRD's CEL rules on filter combinations.
    const filters = rule.filters ?? [];
    const at = (type: string) => filters.findIndex((f) => f.type === type);
    const redirect = at('RequestRedirect');
    if (redirect >= 0 && at('URLRewrite') >= 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['filters', at('URLRewrite')],
        message: 'RequestRedirect and URLRewrite may not be used together',
      });
    }
    if (redirect >= 0 && (rule.backendRefs?.length ?? 0) > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['backendRefs'],
        message: 'a RequestRedirect filter may not be used with backendRefs',
      });
    }
    filters.forEach((f, i) => {
      const path =
        f.type === 'RequestRedirect'
          ? f.requestRedirect?.path
          : f.type === 'URLRewrite'
            ? f.urlRewrite?.path
            : null;
      const prefixMatches = rule.matches.filter((m) => m.path.type === 'PathPrefix').length;
      if (path?.type === 'ReplacePrefixMatch' && (prefixMatches !== 1 || rule.matches.length !== 1)) {
        ctx.addIssue({
          code: 'custom',
          path: [
            'filters',
            i,
            f.type === 'RequestRedirect' ? 'requestRedirect' : 'urlRewrite',
            'path',
            'type',
          ],
          message: 'ReplacePrefixMatch needs exactly one match, of type PathPrefix',
        });
      }
    });
  });

export const hostnames = z.array(z.string().min(1).max(253)).max(16);

export const httpRouteSchema = z.looseObject({
  metadata: objectMeta,
  spec: z.looseObject({
    parentRefs: z.array(parentRefSchema).max(32).nullish(),
    hostnames: hostnames.nullish(),
    rules: withDefault(z.array(httpRouteRuleSchema).max(16), [{ matches: [{ path: { ...DEFAULT_PATH } }] }]),
  }),
});

export type HttpRoute = z.infer<typeof httpRouteSchema>;
export type HttpRouteSpec = HttpRoute['spec'];
export type HttpRouteRule = z.infer<typeof httpRouteRuleSchema>;
export type HttpRouteMatch = z.infer<typeof httpRouteMatchSchema>;
export type HttpRouteFilter = z.infer<typeof httpRouteFilterSchema>;
export type HttpHeaderMatch = z.infer<typeof headerMatchSchema>;
export type HeaderModifier = z.infer<typeof headerModifierSchema>;
export type BackendRef = z.infer<typeof backendRefSchema>;
export type ParentRef = z.infer<typeof parentRefSchema>;
export type HttpRouteTimeouts = z.infer<typeof timeoutsSchema>;
export type HttpRouteRetry = z.infer<typeof retrySchema>;

export const httpRouteKind: KindDefinition<HttpRoute> = {
  kind: 'HTTPRoute',
  groups: ['gateway.networking.k8s.io'],
  versions: ['v1', 'v1beta1'],
  namespaced: true,
  schema: httpRouteSchema,
};
