// Precompiled matchers for AuthorizationPolicy values (l7-semantics.md §2.4-2.6). Everything here
// runs once per snapshot; the returned closures do only the comparison per request.
import { BlockList, isIP } from 'node:net';

export type Match = (value: string) => boolean;

/**
 * Istio's string match: `*` presence (non-empty), `x*` prefix, `*x` suffix, otherwise exact (a `*`
 * elsewhere is a literal). With ignoreCase both sides are lower-cased (hosts).
 */
export function stringMatcher(pattern: string, ignoreCase = false): Match {
  const p = ignoreCase ? pattern.toLowerCase() : pattern;
  const norm = ignoreCase ? (v: string) => v.toLowerCase() : (v: string) => v;
  if (p === '*') return (v) => v.length > 0;
  if (p.startsWith('*')) {
    const suffix = p.slice(1);
    return (v) => norm(v).endsWith(suffix);
  }
  if (p.endsWith('*')) {
    const prefix = p.slice(0, -1);
    return (v) => norm(v).startsWith(prefix);
  }
  return (v) => norm(v) === p;
}

/** Any of the patterns. */
export function anyOf(matchers: readonly Match[]): Match {
  if (matchers.length === 1) return matchers[0]!;
  return (v) => {
    for (const m of matchers) if (m(v)) return true;
    return false;
  };
}

const escapeRegex = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/**
 * `principals`: Istio prepends `spiffe://` and matches the peer URI; `*x` becomes the regex
 * `spiffe://.*x`. Applied here to the URI.
 */
export function principalMatcher(pattern: string): Match {
  if (pattern === '*') return (uri) => uri.length > 0;
  if (pattern.startsWith('*')) {
    const suffix = pattern.slice(1);
    return (uri) => uri.startsWith('spiffe://') && uri.endsWith(suffix);
  }
  return stringMatcher(`spiffe://${pattern}`);
}

/** `namespaces`: Istio matches the regex `.*SLASH ns SLASH <v> SLASH .*` on the peer URI, each `*` in v becoming `.*`. */
export function namespaceMatcher(pattern: string): Match {
  const body = pattern.split('*').map(escapeRegex).join('.*');
  const re = new RegExp(`^.*\\/ns\\/${body}\\/.*$`);
  return (uri) => re.test(uri);
}

/**
 * `serviceAccounts`: `ns/sa` or `sa` (the policy's namespace); regex
 * `spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?` on the peer URI. No wildcards.
 */
export function serviceAccountMatcher(value: string, policyNamespace: string): Match | string {
  const parts = value.split('/');
  if (parts.length > 2 || parts.some((p) => p === '') || value.includes('*')) {
    return `invalid service account ${JSON.stringify(value)} (want SA or NAMESPACE/SA, no wildcards)`;
  }
  const [ns, sa] = parts.length === 2 ? [parts[0]!, parts[1]!] : [policyNamespace, parts[0]!];
  const re = new RegExp(
    `^spiffe:\\/\\/.+\\/ns\\/${escapeRegex(ns)}\\/(.+\\/|)sa\\/${escapeRegex(sa)}(\\/.+)?$`,
  );
  return (uri) => re.test(uri);
}

/**
 * `requestPrincipals` against `ISS/SUB` (split at the last `/`): `*` both non-empty; `*x` with a
 * `/` iss suffix + exact sub, without: any iss + sub suffix; `x*` with a `/` exact iss + sub prefix,
 * without: iss prefix + any sub; exact otherwise.
 */
export function requestPrincipalMatcher(pattern: string): (iss: string, sub: string) => boolean {
  if (pattern === '*') return (iss, sub) => iss.length > 0 && sub.length > 0;
  const slash = pattern.lastIndexOf('/');
  if (pattern.startsWith('*')) {
    const rest = pattern.slice(1);
    if (slash >= 0) {
      const issSuffix = pattern.slice(1, slash);
      const sub = pattern.slice(slash + 1);
      return (i, s) => i.endsWith(issSuffix) && s === sub;
    }
    return (_i, s) => s.endsWith(rest);
  }
  if (pattern.endsWith('*')) {
    if (slash >= 0) {
      const iss = pattern.slice(0, slash);
      const subPrefix = pattern.slice(slash + 1, -1);
      return (i, s) => i === iss && s.startsWith(subPrefix);
    }
    const issPrefix = pattern.slice(0, -1);
    return (i) => i.startsWith(issPrefix);
  }
  return (i, s) => `${i}/${s}` === pattern;
}

/** A CIDR set; returns an error string for the first invalid entry. */
export function cidrMatcher(values: readonly string[]): Match | string {
  const list = new BlockList();
  for (const raw of values) {
    const v = raw.trim();
    const slash = v.indexOf('/');
    const addr = slash < 0 ? v : v.slice(0, slash);
    const family = isIP(addr);
    if (family === 0) return `invalid IP address or CIDR ${JSON.stringify(raw)}`;
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (slash < 0) {
      list.addAddress(addr, type);
      continue;
    }
    const lenText = v.slice(slash + 1);
    const len = Number(lenText);
    if (!/^\d{1,3}$/.test(lenText) || len > (family === 4 ? 32 : 128)) {
      return `invalid IP address or CIDR ${JSON.stringify(raw)}`;
    }
    list.addSubnet(addr, len, type);
  }
  return (ip) => {
    const family = isIP(ip);
    if (family === 0) return false;
    return list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
  };
}

/** One CIDR value, checked alone (so a DENY can drop only the bad value). */
export function validCidr(value: string): boolean {
  return typeof cidrMatcher([value]) === 'function';
}

/** A port value: an integer 0-65535 written as a string. */
export function parsePort(value: string): number | undefined {
  if (!/^\d{1,5}$/.test(value)) return undefined;
  const n = Number(value);
  return n <= 65535 ? n : undefined;
}

/**
 * Path matcher: Istio string match, or (when the value has `{*}`/`{**}`) a URI template. Returns an
 * error string for an invalid template.
 */
export function pathMatcher(pattern: string): Match | string {
  if (!pattern.includes('{') && !pattern.includes('}')) return stringMatcher(pattern);
  return templateMatcher(pattern);
}

/**
 * Envoy uri_template with Istio's operators: `{*}` is one segment, `{**}` zero or more segments and
 * only last. No other `*`, `{`, `}`, and an operator fills its whole segment.
 */
export function templateMatcher(pattern: string): Match | string {
  const bad = `invalid path template ${JSON.stringify(pattern)}`;
  if (!pattern.startsWith('/')) return bad;
  const segments = pattern.slice(1).split('/');
  let re = '^';
  let sawDouble = false;
  for (const [i, seg] of segments.entries()) {
    if (seg === '{*}') {
      if (sawDouble) return bad;
      re += '\\/[^/]+';
    } else if (seg === '{**}') {
      if (sawDouble) return bad;
      re += '\\/.*';
      sawDouble = true;
    } else if (/[*{}]/.test(seg)) return bad;
    else if (sawDouble && seg === '' && i === segments.length - 1) {
      // `/foo/{**}/`: Istio documents that it matches /foo/bar/, /foo/bar/baz.txt and /foo//, not
      // /foo/bar, i.e. "a further slash somewhere after /foo/".
      re += '\\/.*';
    } else re += `\\/${escapeRegex(seg)}`;
  }
  re += '$';
  const compiled = new RegExp(re);
  return (path) => compiled.test(path);
}
