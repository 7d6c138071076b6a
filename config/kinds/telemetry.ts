// Telemetry (telemetry.istio.io v1 and v1alpha1): which tracing and access-log providers a workload
// uses, the sampling percentage and custom span tags (istio/api telemetry/v1alpha1/telemetry.proto).
// A resource selects the waypoint by targetRefs (its Gateway) or selector; one in the root namespace
// without either is the mesh default. `metrics[]` is accepted but not enforced (telemetryWarnings).
import { z } from 'zod';
import { labels, objectMeta } from './common.ts';
import type { KindDefinition } from './registry.ts';
import { policyTargetRefSchema } from './request-authentication.ts';

const providerRefSchema = z.looseObject({ name: z.string().min(1) });

const workloadModeSchema = z.enum(['CLIENT_AND_SERVER', 'CLIENT', 'SERVER']);
const matchSchema = z.looseObject({ mode: workloadModeSchema.nullish() });

/** One of literal, environment or header (CustomTag's oneof). */
export const customTagSchema = z
  .looseObject({
    literal: z.looseObject({ value: z.string() }).nullish(),
    environment: z.looseObject({ name: z.string().min(1), defaultValue: z.string().nullish() }).nullish(),
    header: z.looseObject({ name: z.string().min(1), defaultValue: z.string().nullish() }).nullish(),
  })
  .superRefine((tag, ctx) => {
    const set = [tag.literal, tag.environment, tag.header].filter((t) => t != null).length;
    if (set !== 1)
      ctx.addIssue({ code: 'custom', message: 'expected exactly one of literal, environment or header' });
  });

export const tracingSchema = z.looseObject({
  match: matchSchema.nullish(),
  providers: z.array(providerRefSchema).nullish(),
  randomSamplingPercentage: z.number().min(0).max(100).nullish(),
  disableSpanReporting: z.boolean().nullish(),
  customTags: z.record(z.string().min(1), customTagSchema).nullish(),
  useRequestIdForTraceSampling: z.boolean().nullish(),
});

export const accessLoggingSchema = z.looseObject({
  match: matchSchema.nullish(),
  providers: z.array(providerRefSchema).nullish(),
  disabled: z.boolean().nullish(),
  filter: z.looseObject({ expression: z.string() }).nullish(),
});

export const telemetrySchema = z.looseObject({
  metadata: objectMeta,
  spec: z
    .looseObject({
      selector: z.looseObject({ matchLabels: labels.nullish() }).nullish(),
      targetRef: policyTargetRefSchema.nullish(),
      targetRefs: z.array(policyTargetRefSchema).max(16).nullish(),
      tracing: z.array(tracingSchema).nullish(),
      accessLogging: z.array(accessLoggingSchema).nullish(),
      metrics: z.array(z.looseObject({})).nullish(),
    })
    .superRefine((spec, ctx) => {
      if (spec.selector && (spec.targetRef || spec.targetRefs?.length))
        ctx.addIssue({
          code: 'custom',
          path: ['selector'],
          message: 'selector and targetRefs are exclusive',
        });
    })
    .nullish(),
});

export type Telemetry = z.infer<typeof telemetrySchema>;
export type TelemetryTracing = z.infer<typeof tracingSchema>;
export type TelemetryAccessLogging = z.infer<typeof accessLoggingSchema>;
export type CustomTagSpec = z.infer<typeof customTagSchema>;

export const telemetryKind: KindDefinition<Telemetry> = {
  kind: 'Telemetry',
  groups: ['telemetry.istio.io'],
  versions: ['v1', 'v1alpha1'],
  namespaced: true,
  schema: telemetrySchema,
};

/** Fields accepted but not enforced by the waypoint, as `field: why` lines for the snapshot's warnings. */
export function telemetryWarnings(t: Telemetry): string[] {
  const out: string[] = [];
  if (t.spec?.metrics?.length)
    out.push('spec.metrics: not enforced by this waypoint (its metrics are fixed); ignored');
  return out;
}
