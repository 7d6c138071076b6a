// Istio's precedence among route entries of Gateway API routes (l7-semantics.md §4.3; istio
// pilot/pkg/config/kube/gateway conversion.go sortHTTPRoutes): routes oldest first, each match an
// entry in rule then match order, then a stable sort by path type (Exact > prefix > regex > none),
// longer path, method match, more headers, more query parameters.
import type { RouteEntry, RouteMatch } from './model.ts';

function pathRank(m: RouteMatch): number {
  switch (m.path?.type) {
    case 'Exact':
      return 3;
    case 'PathPrefix':
    case 'Prefix':
      return 2;
    case 'RegularExpression':
      return 1;
    default:
      return 0;
  }
}

export function comparePrecedence(a: RouteMatch, b: RouteMatch): number {
  return (
    pathRank(b) - pathRank(a) ||
    (b.path?.value.length ?? 0) - (a.path?.value.length ?? 0) ||
    Number(b.method !== undefined) - Number(a.method !== undefined) ||
    b.headers.length - a.headers.length ||
    b.queryParams.length - a.queryParams.length
  );
}

/** Sorts in place; Array.prototype.sort is stable, so equal entries keep route and rule order. */
export function sortEntries(entries: RouteEntry[]): RouteEntry[] {
  return entries.sort((a, b) => comparePrecedence(a.match, b.match));
}

/** Order routes as Istio does before flattening: creation timestamp, then namespace/name. */
export function routeOrder(
  a: { namespace: string; name: string; created: string },
  b: { namespace: string; name: string; created: string },
): number {
  if (a.created !== b.created) return a.created < b.created ? -1 : 1;
  const ka = `${a.namespace}/${a.name}`;
  const kb = `${b.namespace}/${b.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}
