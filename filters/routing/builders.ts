// Small translations shared by the Gateway API and VirtualService compilers: string matches,
// anchored regular expressions, header operations, percentages.
import { isEmptyOps } from './actions.ts';
import type {
  Backend,
  ForwardAction,
  HeaderOps,
  InvalidRuleAction,
  RouteMatch,
  RouteRef,
  ValueMatch,
} from './model.ts';

export class RouteConfigError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.field = field;
  }
}

/** The configuration problem a compile step threw; anything else is a bug and is thrown on. */
export function configError(err: unknown): RouteConfigError {
  if (!(err instanceof RouteConfigError)) throw err;
  return err;
}

/** What a rule that cannot be compiled does instead: answer 500 `route_rule_invalid`, saying why. */
export function invalidRule(err: RouteConfigError): InvalidRuleAction {
  return { kind: 'invalid', why: `${err.field}: ${err.message}`, cors: undefined, fault: undefined };
}

/**
 * RE2 full match, run by JavaScript's engine: the expression is anchored; an expression JavaScript
 * cannot compile is a configuration error naming the field.
 */
export function fullMatchRegex(source: string, field: string): RegExp {
  return compileRegex(`^(?:${source})$`, field, source);
}

/** A regular expression as written (never global: frozen snapshots hold it). */
export function compileRegex(pattern: string, field: string, source = pattern): RegExp {
  try {
    return new RegExp(pattern);
  } catch (err) {
    throw new RouteConfigError(
      field,
      `invalid regular expression ${JSON.stringify(source)}: ${(err as Error).message}`,
    );
  }
}

export function exact(value: string, ignoreCase = false): ValueMatch {
  return { type: 'Exact', value, ignoreCase, regex: undefined };
}

export function regexMatch(source: string, field: string): ValueMatch {
  return {
    type: 'RegularExpression',
    value: source,
    ignoreCase: false,
    regex: fullMatchRegex(source, field),
  };
}

/** Istio StringMatch (`{}` = present, for headers and query parameters). */
export function istioStringMatch(
  m: { exact?: string | null; prefix?: string | null; regex?: string | null },
  field: string,
  ignoreCase = false,
): ValueMatch {
  if (m.exact != null) return exact(m.exact, ignoreCase);
  if (m.prefix != null) return { type: 'Prefix', value: m.prefix, ignoreCase, regex: undefined };
  if (m.regex != null) {
    // `*` is Istio's spelling of "any value".
    if (m.regex === '*') return { type: 'Present', value: '', ignoreCase: false, regex: undefined };
    return regexMatch(m.regex, field);
  }
  return { type: 'Present', value: '', ignoreCase: false, regex: undefined };
}

export interface HeaderOpsWithAuthority {
  readonly ops: HeaderOps;
  /** A set/add of `host` or `:authority` is an authority rewrite (Istio's headerListToMap). */
  readonly authority: string | undefined;
}

export function headerOps(
  set: readonly (readonly [string, string])[],
  add: readonly (readonly [string, string])[],
  remove: readonly string[],
): HeaderOpsWithAuthority {
  let authority: string | undefined;
  const keep = (list: readonly (readonly [string, string])[]): [string, string][] => {
    const seen = new Set<string>();
    const out: [string, string][] = [];
    for (const [rawName, value] of list) {
      const name = rawName.toLowerCase();
      if (name === 'host' || name === ':authority') {
        authority ??= value;
        continue;
      }
      // Other pseudo-headers cannot be set; the first of duplicate names wins.
      if (name.startsWith(':') || seen.has(name)) continue;
      seen.add(name);
      out.push([name, value]);
    }
    return out;
  };
  return {
    ops: { set: keep(set), add: keep(add), remove: remove.map((n) => n.toLowerCase()) },
    authority,
  };
}

export function mergeOps(a: HeaderOps, b: HeaderOps): HeaderOps {
  return { set: [...a.set, ...b.set], add: [...a.add, ...b.add], remove: [...a.remove, ...b.remove] };
}

/** Istio Percent {value: 0-100} → 0-1; absent → `dflt`. */
export function fraction(p: { value: number } | null | undefined, dflt: number): number {
  return p == null ? dflt : Math.min(1, Math.max(0, p.value / 100));
}

/** Which rule of which resource an entry came from; `display` is the access log's route name. */
export function routeRef(
  kind: RouteRef['kind'],
  r: { readonly namespace: string; readonly name: string },
  ruleIndex: number,
  ruleName: string | null | undefined,
): RouteRef {
  return {
    kind,
    namespace: r.namespace,
    name: r.name,
    ruleIndex,
    ruleName: ruleName ?? undefined,
    display: `${r.namespace}.${r.name}.${ruleName ?? ruleIndex}`,
  };
}

/** A match with no conditions: matches every request. */
export const MATCH_ANY: RouteMatch = Object.freeze({
  path: undefined,
  headers: Object.freeze([]),
  queryParams: Object.freeze([]),
  method: undefined,
  authority: undefined,
  port: undefined,
});

/**
 * A forward action with what the router needs per backend computed once: each backend's upstream
 * target (cluster, timeouts, retry, mirrors, route name), its response header operations and the
 * split's explain line.
 */
export function forwardAction(
  parts: Omit<ForwardAction, 'kind' | 'totalWeight' | 'targets' | 'responseOps' | 'shares'>,
  routeName: string,
): ForwardAction {
  const totalWeight = parts.backends.reduce((sum, b) => sum + b.weight, 0);
  return {
    kind: 'forward',
    ...parts,
    totalWeight,
    targets: parts.backends.map((b) =>
      b.cluster
        ? {
            cluster: b.cluster,
            timeouts: parts.timeouts,
            retry: parts.retry,
            mirrors: parts.mirrors,
            routeName,
          }
        : undefined,
    ),
    responseOps: parts.backends.map((b) =>
      [parts.responseHeaders, b.responseHeaders].filter((o) => !isEmptyOps(o)),
    ),
    shares: parts.backends
      .map((b) => `${shareName(b)} ${Math.round((1000 * b.weight) / totalWeight) / 10}%`)
      .join(', '),
  };
}

function shareName(b: Backend): string {
  return b.cluster?.name ?? `invalid (${b.invalid})`;
}
