// Request tracing with the OpenTelemetry SDK, as Envoy's Istio tracing does it: a SERVER span per
// request and a CLIENT span per upstream attempt, W3C and B3 context in and out, sampling 1% by
// default with an incoming sampled flag honoured. Off (no exporter) it costs one field read per
// request: no span, no context, no header work.
import { createRequire } from 'node:module';
import {
  type Attributes,
  type Context,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import type * as OtelCore from '@opentelemetry/core';
import type * as OtelB3 from '@opentelemetry/propagator-b3';
import type * as OtelSdk from '@opentelemetry/sdk-trace';
import type { Sampler, SpanExporter, SpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';

export type CustomTag =
  | { readonly literal: string }
  | { readonly environment: string; readonly defaultValue?: string }
  | { readonly header: string; readonly defaultValue?: string };

export interface TracingSettings {
  /** Where spans go; absent: tracing off. */
  readonly exporter?: SpanExporter;
  /** Processor override (tests: SimpleSpanProcessor); default a BatchSpanProcessor on `exporter`. */
  readonly processor?: SpanProcessor;
  /** Percentage of requests without a sampling decision that are sampled (Istio default 1). */
  readonly samplingPercent?: number;
  readonly customTags?: Readonly<Record<string, CustomTag>>;
  /** Istio's maxTagLength: longer tag values are cut. */
  readonly maxTagLength?: number;
  /** Injected randomness in [0, 1) for the sampling decision (tests). */
  readonly random?: () => number;
}

/** Who is tracing: the waypoint's own Istio tags (istio.canonical_service, namespace, mesh, node). */
export interface TracingIdentity {
  readonly canonicalService: string;
  readonly namespace: string;
  readonly meshId: string;
  readonly nodeId: string;
}

const getter: TextMapGetter<Record<string, unknown>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key] as string | string[] | undefined,
};
const setter: TextMapSetter<Record<string, unknown>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

/** Headers a propagator writes: removed before injecting so a stale incoming value never leaks. */
const TRACE_HEADERS = [
  'traceparent',
  'tracestate',
  'b3',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
];

// The SDK and the propagators are loaded when a Telemetry turns tracing on (about 20 MB of RSS a
// waypoint without tracing should not carry); createRequire keeps configure() synchronous.
const load = createRequire(import.meta.url);
let otel:
  | {
      readonly sdk: typeof OtelSdk;
      readonly extractor: OtelCore.CompositePropagator;
      readonly b3Single: OtelB3.B3Propagator;
    }
  | undefined;
function sdk(): NonNullable<typeof otel> {
  if (otel) return otel;
  const core = load('@opentelemetry/core') as typeof OtelCore;
  const b3 = load('@opentelemetry/propagator-b3') as typeof OtelB3;
  const extractor = new core.CompositePropagator({
    propagators: [
      new core.W3CTraceContextPropagator(),
      new b3.B3Propagator({ injectEncoding: b3.B3InjectEncoding.MULTI_HEADER }),
    ],
  });
  const b3Single = new b3.B3Propagator({ injectEncoding: b3.B3InjectEncoding.SINGLE_HEADER });
  otel = { sdk: load('@opentelemetry/sdk-trace') as typeof OtelSdk, extractor, b3Single };
  return otel;
}

const SERVER_SPAN = 'ingress';

/** Samples `percent` of root requests with the given randomness (Envoy's random_sampling). */
class PercentSampler implements Sampler {
  readonly percent: number;
  readonly random: () => number;
  constructor(percent: number, random: () => number) {
    this.percent = percent;
    this.random = random;
  }
  shouldSample() {
    const hit = this.percent >= 100 || (this.percent > 0 && this.random() * 100 < this.percent);
    const { SamplingDecision } = sdk().sdk;
    return { decision: hit ? SamplingDecision.RECORD_AND_SAMPLED : SamplingDecision.NOT_RECORD };
  }
  toString(): string {
    return `PercentSampler{${this.percent}}`;
  }
}

interface Active {
  readonly provider: TracerProvider;
  readonly tracer: Tracer;
  readonly settings: TracingSettings;
}

/** The server span of a request and the context its attempts are children of. */
export interface ServerTrace {
  readonly span: Span;
  readonly context: Context;
  /** `b3` came in single-header: it goes out that way too. */
  readonly b3Single: boolean;
  readonly tracing: Tracing;
}

export class Tracing {
  #active: Active | undefined;
  readonly #identity: TracingIdentity;

  constructor(identity: TracingIdentity, settings: TracingSettings = {}) {
    this.#identity = identity;
    this.configure(settings);
  }

  get enabled(): boolean {
    return this.#active !== undefined;
  }

  /** Swaps the settings in force (a Telemetry change); the old provider flushes and shuts down. */
  configure(settings: TracingSettings): void {
    const old = this.#active;
    this.#active = undefined;
    if (settings.exporter || settings.processor) {
      const { BatchSpanProcessor, ParentBasedSampler, TracerProvider } = sdk().sdk;
      const root = new PercentSampler(settings.samplingPercent ?? 1, settings.random ?? Math.random);
      const provider = new TracerProvider({
        sampler: new ParentBasedSampler({ root }),
        spanProcessors: [
          settings.processor ?? new BatchSpanProcessor({ exporter: settings.exporter as SpanExporter }),
        ],
      });
      this.#active = { provider, tracer: provider.getTracer('node-waypoint'), settings };
    }
    if (old) void old.provider.shutdown().catch(() => {});
  }

  /** Starts the request's SERVER span from its incoming headers; undefined when tracing is off. */
  startServer(
    method: string,
    authority: string,
    path: string,
    headers: Record<string, unknown>,
    requestId: string,
  ): ServerTrace | undefined {
    const active = this.#active;
    if (!active) return undefined;
    const parent = sdk().extractor.extract(ROOT_CONTEXT, headers, getter);
    // The name is set below on a span that records; an unsampled one never shows it (no regex per request).
    const span = active.tracer.startSpan(SERVER_SPAN, { kind: SpanKind.SERVER }, parent);
    // Attributes only for a span that records: at 1% sampling the other 99 requests build none.
    if (span.isRecording()) {
      const url = `http://${authority}${path}`;
      span.updateName(url.replace(/\?.*$/, ''));
      span.setAttributes(this.#baseAttributes(method, url, requestId, headers));
    }
    return {
      span,
      context: trace.setSpan(parent, span),
      b3Single: typeof headers.b3 === 'string',
      tracing: this,
    };
  }

  /** An unsampled request's attempt: no span, only the request's context written on the way out. */
  propagate(server: ServerTrace, headers: Record<string, unknown>): void {
    const { extractor, b3Single } = sdk();
    for (const h of TRACE_HEADERS) delete headers[h];
    extractor.inject(server.context, headers, setter);
    if (server.b3Single) b3Single.inject(server.context, headers, setter);
  }

  /** Starts an attempt's CLIENT span and writes its context into the outgoing headers. */
  startClient(server: ServerTrace, method: string, url: string, headers: Record<string, unknown>): Span {
    const active = this.#active;
    const span = active
      ? active.tracer.startSpan(
          url.replace(/\?.*$/, ''),
          { kind: SpanKind.CLIENT, attributes: this.#identityAttributes(method, url) },
          server.context,
        )
      : trace.wrapSpanContext(server.span.spanContext());
    const { extractor, b3Single } = sdk();
    for (const h of TRACE_HEADERS) delete headers[h];
    const ctx = trace.setSpan(server.context, span);
    extractor.inject(ctx, headers, setter);
    if (server.b3Single) b3Single.inject(ctx, headers, setter);
    return span;
  }

  /** Exports what is buffered now (tests, shutdown). */
  async flush(): Promise<void> {
    await this.#active?.provider.forceFlush();
  }

  /** Flushes what is buffered and stops exporting. */
  async close(): Promise<void> {
    const active = this.#active;
    this.#active = undefined;
    await active?.provider.shutdown();
  }

  #identityAttributes(method: string, url: string): Attributes {
    const id = this.#identity;
    return {
      'http.method': method,
      'http.url': url,
      'istio.canonical_service': id.canonicalService,
      'istio.namespace': id.namespace,
      'istio.mesh_id': id.meshId,
      node_id: id.nodeId,
      component: 'proxy',
    };
  }

  #baseAttributes(
    method: string,
    url: string,
    requestId: string,
    headers: Record<string, unknown>,
  ): Attributes {
    const attrs = this.#identityAttributes(method, url);
    attrs.guid_x_request_id = requestId;
    const ua = headers['user-agent'];
    if (typeof ua === 'string') attrs.user_agent = ua;
    const tags = this.#active?.settings.customTags;
    if (tags)
      Object.assign(attrs, customTagValues(tags, headers, this.#active?.settings.maxTagLength ?? 256));
    return attrs;
  }
}

/** The custom tags' values for one request, as Envoy's custom_tags (literal, environment, header). */
export function customTagValues(
  tags: Readonly<Record<string, CustomTag>>,
  headers: Record<string, unknown>,
  maxLength: number,
): Attributes {
  const out: Attributes = {};
  for (const [name, tag] of Object.entries(tags)) {
    let value: string | undefined;
    if ('literal' in tag) value = tag.literal;
    else if ('environment' in tag) value = process.env[tag.environment] ?? tag.defaultValue;
    else {
      const h = headers[tag.header.toLowerCase()];
      value = (Array.isArray(h) ? h.join(',') : (h as string | undefined)) ?? tag.defaultValue;
    }
    if (value !== undefined) out[name] = value.slice(0, maxLength);
  }
  return out;
}

/** What a finished span records (Envoy's HCM tags on the SERVER span, router tags on CLIENT spans). */
export interface SpanOutcome {
  readonly status: number;
  readonly responseFlags: string;
  readonly upstreamCluster?: string;
  readonly upstreamAddress?: string;
  readonly requestSize: number;
  readonly responseSize: number;
}

export function endSpan(span: Span, o: SpanOutcome): void {
  span.setAttributes({
    'http.status_code': o.status,
    response_flags: o.responseFlags,
    upstream_cluster: o.upstreamCluster ?? '-',
    upstream_address: o.upstreamAddress ?? '-',
    request_size: o.requestSize,
    response_size: o.responseSize,
  });
  // Envoy marks 5xx and no-response as error=true.
  if (o.status === 0 || o.status >= 500) {
    span.setAttribute('error', true);
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
  span.end();
}

/** Where the engine keeps a traced request's ServerTrace in ctx.attributes. */
export const SERVER_TRACE = Symbol('observe.trace');

export function serverTrace(ctx: { readonly attributes: Map<symbol, unknown> }): ServerTrace | undefined {
  return ctx.attributes.get(SERVER_TRACE) as ServerTrace | undefined;
}
