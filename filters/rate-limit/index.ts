// Rate limits at the waypoint (BackendTrafficPolicy, filters/rate-limit/README.md): for each rule
// attached to the request's destination whose client selectors hold, counts the request against
// its bucket (local: this replica's memory; global: Redis, shared by every replica). Any bucket
// over its limit answers 429 the way Envoy does (body `local_rate_limited` or empty for global, flag
// RL, `x-envoy-ratelimited: true`, optional x-ratelimit-* headers); gRPC clients get the engine's
// gRPC-shaped reply (status 14).
import type { OutgoingHttpHeaders } from 'node:http';
import { backendTrafficPolicyKind } from '../../config/kinds/backend-traffic-policy.ts';
import { registerKind } from '../../config/kinds/registry.ts';
import type { Snapshot } from '../../config/model.ts';
import type { Logger } from '../../src/observe/logger.ts';
import { silentLogger } from '../../src/observe/logger.ts';
import type { RequestContext } from '../../src/pipeline/context.ts';
import {
  CONTINUE,
  type CounterSpec,
  type Filter,
  type FilterContext,
  type FilterFactory,
  type Verdict,
} from '../../src/pipeline/filter.ts';
import { selectedRoute } from '../routing/index.ts';
import { compileRateLimit } from './compile.ts';
import { type FailureMode, GlobalStore, type GlobalStoreOptions } from './global.ts';
import { type Decision, LocalBuckets } from './local.ts';
import { bucketKey, factsOf } from './match.ts';
import {
  type AttachedRule,
  FILTER_NAME,
  type RateLimitConfig,
  type RateLimitRule,
  routeKey,
} from './model.ts';

registerKind(backendTrafficPolicyKind);

export { FILTER_NAME } from './model.ts';

export type RateLimitResult = 'ok' | 'over_limit' | 'failure_allowed' | 'failure_denied';

/** Where decisions are counted (default: the counters of the engine's FilterContext). */
export interface RateLimitSink {
  decision(policy: string, type: 'Local' | 'Global', result: RateLimitResult): void;
  /** A global rule could not be checked; `mode` is what the request got. */
  redisFailure(mode: FailureMode): void;
}

export interface RateLimitOptions {
  /** Redis for Global rules. Absent: Global rules always take the failure mode (and say so in the log). */
  readonly redis?: Omit<GlobalStoreOptions, 'log'>;
  /** What a request gets when its global limit cannot be checked. Default open. */
  readonly failureMode?: FailureMode;
  readonly sink?: RateLimitSink;
  readonly log?: Logger;
}

export interface RateLimitFactory extends FilterFactory {
  /** Closes the Redis connection. */
  close(): Promise<void>;
}

const RESPONSE_HEADERS = Symbol('rate-limit.headers');

const DECISIONS: CounterSpec = {
  name: 'waypoint_rate_limit_decisions_total',
  help: 'Requests counted by a BackendTrafficPolicy rate-limit rule, by policy (NS/NAME), type (Local, Global) and result (ok, over_limit; failure_allowed / failure_denied when Redis could not answer).',
  labels: ['policy', 'type', 'result'],
};

const REDIS_FAILURES: CounterSpec = {
  name: 'waypoint_rate_limit_redis_failures_total',
  help: 'Global rate-limit checks that Redis could not answer (down, timed out, circuit open), by failure mode applied (open: allowed; closed: refused).',
  labels: ['mode'],
  zeros: [['open'], ['closed']],
};

/** The filter's counters in the engine's registry (declared when a snapshot first has rate limits). */
function contextSink(context: FilterContext | undefined): RateLimitSink | undefined {
  if (!context) return undefined;
  const decisions = context.metrics.counter(DECISIONS);
  const failures = context.metrics.counter(REDIS_FAILURES);
  return {
    decision: (policy, type, result) => decisions.inc(policy, type, result),
    redisFailure: (mode) => failures.inc(mode),
  };
}

function allRules(config: RateLimitConfig): RateLimitRule[] {
  const out: RateLimitRule[] = [];
  for (const list of Object.values(config.services)) for (const a of list) out.push(a.rule);
  for (const a of config.workload) out.push(a.rule);
  for (const list of Object.values(config.routes)) for (const a of list) out.push(a.rule);
  return out;
}

/** DRAFT_VERSION_03 headers of the tightest bucket, as Envoy's enable_x_ratelimit_headers. */
function rateLimitHeaders(d: Decision): OutgoingHttpHeaders {
  return {
    'x-ratelimit-limit': `${d.limit}, ${d.limit};w=${d.windowSeconds}`,
    'x-ratelimit-remaining': String(d.remaining),
    'x-ratelimit-reset': String(d.resetSeconds),
  };
}

/** Counts a request against a rule's bucket: this replica's (or its workers' shared) memory, or Redis. */
class Buckets {
  readonly local = new LocalBuckets();
  global: GlobalStore | undefined;
  readonly #log: Logger;
  readonly #failureMode: FailureMode;
  #lastNoRedisLog = 0;

  constructor(opts: RateLimitOptions, log: Logger) {
    this.#log = log;
    this.#failureMode = opts.failureMode ?? 'open';
    // Connected at start, so an unreachable Redis shows in the log before the first request needs it.
    this.global = opts.redis ? new GlobalStore({ ...opts.redis, log }) : undefined;
  }

  async count(a: AttachedRule, key: string): Promise<Decision | 'failed'> {
    if (a.rule.type === 'Local') return this.local.consume(a.rule, key);
    const s = this.global;
    if (!s) {
      this.#warnNoRedis(a.rule);
      return 'failed';
    }
    return (await s.consume(a.rule, key)) ?? 'failed';
  }

  /** Drops the buckets of rules no longer configured. */
  retain(rules: readonly RateLimitRule[]): void {
    this.local.retain(rules.filter((r) => r.type === 'Local'));
    this.global?.retain(rules.filter((r) => r.type === 'Global'));
  }

  #warnNoRedis(rule: RateLimitRule): void {
    const now = Date.now();
    if (now - this.#lastNoRedisLog <= 10_000) return;
    this.#lastNoRedisLog = now;
    this.#log.warn('rate-limit: a Global rule applies but no --redis-url is set', {
      policy: rule.policy,
      failure_mode: this.#failureMode,
    });
  }
}

/** The rules attached to a request's destination: its Service (or workload traffic), plus its route's. */
function attachedRules(config: RateLimitConfig): (ctx: RequestContext) => readonly AttachedRule[] {
  const hasRoutes = Object.keys(config.routes).length > 0;
  return (ctx) => {
    const b = ctx.tunnel.binding;
    const base =
      b.kind === 'service'
        ? (config.services[`${b.service.namespace}/${b.service.name}`] ?? [])
        : config.workload;
    if (!hasRoutes) return base;
    // The route this request takes (selection is shared with the router, computed once).
    const ref = selectedRoute(ctx).entry?.ref;
    if (!ref) return base;
    const byRule = config.routes[routeKey(ref.kind, ref.namespace, ref.name, ref.ruleName ?? '')] ?? [];
    const byRoute = config.routes[routeKey(ref.kind, ref.namespace, ref.name, '*')] ?? [];
    return byRule.length + byRoute.length === 0 ? base : [...base, ...byRoute, ...byRule];
  };
}

interface Tally {
  /** The first bucket over its limit. */
  over?: { rule: RateLimitRule; d: Decision };
  /** The bucket with the fewest requests left among rules that send headers. */
  tightest?: { rule: RateLimitRule; d: Decision };
  /** The first Global rule that could not be checked. */
  failed?: RateLimitRule;
}

/** Counts each outcome in the metrics and finds what decides the request. */
function tally(
  rules: readonly RateLimitRule[],
  outcomes: ReadonlyArray<Decision | 'failed'>,
  failureMode: FailureMode,
  sink: RateLimitSink | undefined,
): Tally {
  const t: Tally = {};
  for (const [i, o] of outcomes.entries()) {
    const rule = rules[i]!;
    if (o === 'failed') {
      t.failed ??= rule;
      sink?.redisFailure(failureMode);
      sink?.decision(rule.policy, rule.type, failureMode === 'open' ? 'failure_allowed' : 'failure_denied');
      continue;
    }
    sink?.decision(rule.policy, rule.type, o.allowed ? 'ok' : 'over_limit');
    if (!o.allowed && !t.over) t.over = { rule, d: o };
    if (rule.headers && (!t.tightest || o.remaining < t.tightest.d.remaining)) t.tightest = { rule, d: o };
  }
  return t;
}

/** Envoy's 429 for the bucket over its limit (local or global). */
function overLimitReply(ctx: RequestContext, rule: RateLimitRule, d: Decision): Verdict {
  ctx.explain.push(
    `rate-limit: over ${rule.type.toLowerCase()} limit ${rule.requests}/${rule.unit} of ${rule.policy} rule ${rule.index}${
      rule.scope === 'Waypoint'
        ? ` (${rule.configuredRequests}/${rule.unit} for the waypoint over ${rule.replicas} replica(s))`
        : ''
    }`,
  );
  const headers: OutgoingHttpHeaders = {
    'x-envoy-ratelimited': 'true',
    ...(rule.headers ? rateLimitHeaders(d) : {}),
  };
  return rule.type === 'Local'
    ? { kind: 'reply', reason: 'local_rate_limited', headers, detail: 'local_rate_limited' }
    : { kind: 'reply', reason: 'rate_limited', headers, detail: 'request_rate_limited' };
}

/** What the tally means for the request: a 429, a 500 when a global check failed closed, or on. */
function verdictOf(ctx: RequestContext, t: Tally, failureMode: FailureMode): Verdict {
  if (t.over) return overLimitReply(ctx, t.over.rule, t.over.d);
  if (t.failed && failureMode === 'closed') {
    ctx.explain.push(`rate-limit: global limit of ${t.failed.policy} could not be checked; failing closed`);
    return { kind: 'reply', reason: 'rate_limit_service_error', detail: 'rate_limiter_error' };
  }
  if (t.failed)
    ctx.explain.push(`rate-limit: global limit of ${t.failed.policy} could not be checked; failing open`);
  if (t.tightest) ctx.attributes.set(RESPONSE_HEADERS, rateLimitHeaders(t.tightest.d));
  return CONTINUE;
}

export function rateLimitFactory(opts: RateLimitOptions = {}): RateLimitFactory {
  const failureMode = opts.failureMode ?? 'open';
  const buckets = new Buckets(opts, opts.log ?? silentLogger);

  function create(snapshot: Snapshot, context?: FilterContext): Filter | undefined {
    const sink = opts.sink ?? contextSink(context);
    const config = snapshot.filters[FILTER_NAME] as RateLimitConfig | undefined;
    if (!config) return undefined;
    const rules = allRules(config);
    buckets.retain(rules);
    if (rules.length === 0) return undefined;
    const attached = attachedRules(config);
    return {
      name: FILTER_NAME,
      async onRequestHeaders(ctx: RequestContext): Promise<Verdict> {
        const list = attached(ctx);
        if (list.length === 0) return CONTINUE;
        const facts = factsOf(ctx);
        const applying: Array<{ a: AttachedRule; key: string }> = [];
        for (const a of list) {
          const key = bucketKey(a, facts);
          if (key !== undefined) applying.push({ a, key });
        }
        if (applying.length === 0) return CONTINUE;
        const outcomes = await Promise.all(applying.map(({ a, key }) => buckets.count(a, key)));
        const rulesApplied = applying.map(({ a }) => a.rule);
        return verdictOf(ctx, tally(rulesApplied, outcomes, failureMode, sink), failureMode);
      },
      onResponseHeaders(ctx, head) {
        const h = ctx.attributes.get(RESPONSE_HEADERS) as OutgoingHttpHeaders | undefined;
        if (h) Object.assign(head.headers, h);
      },
    };
  }

  return {
    name: FILTER_NAME,
    compile: compileRateLimit,
    create,
    close: async () => {
      await buckets.global?.close();
      buckets.global = undefined;
    },
  };
}
