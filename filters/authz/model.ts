// The compiled form of AuthorizationPolicy that the data path reads: per-policy predicates over the
// request's attributes, grouped by action, already attached per destination Service.
import type { RequestAuth } from '../../src/pipeline/request-auth.ts';
import type { ResolvedProvider } from './ext-authz.ts';

export type Action = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

/** What a rule can look at, gathered once per request. */
export interface Attributes {
  /** Peer SPIFFE URI (`spiffe://td/ns/NS/sa/SA`). */
  readonly peerUri: string;
  readonly sourceIp: string;
  readonly remoteIp: string;
  readonly destinationIp: string;
  readonly destinationPort: number;
  readonly method: string;
  /** `:authority` / Host, as sent. */
  readonly host: string;
  /** Normalized path without the query. */
  readonly path: string;
  /** Lower-case names; several values joined with `,`. */
  header(name: string): string | undefined;
  readonly auth: RequestAuth | undefined;
}

export type Predicate = (a: Attributes) => boolean;

export interface CompiledRule {
  /** Index in the policy's `rules`, for `rule[I]` in the deny detail. */
  readonly index: number;
  readonly match: Predicate;
  /** The rule for TCP traffic: HTTP-only conditions never match (ALLOW) or are ignored (others). */
  readonly matchTcp: Predicate;
}

export interface CompiledPolicy {
  readonly namespace: string;
  readonly name: string;
  readonly action: Action;
  readonly dryRun: boolean;
  readonly provider: string | undefined;
  readonly rules: readonly CompiledRule[];
}

/** The policies in force for one destination, by action (dry-run ones included, flagged). */
export interface PolicySet {
  readonly custom: readonly CompiledPolicy[];
  readonly deny: readonly CompiledPolicy[];
  readonly allow: readonly CompiledPolicy[];
  readonly audit: readonly CompiledPolicy[];
}

export interface AuthzConfig {
  /** Policies on the waypoint Gateway and the istio-waypoint GatewayClass: every destination. */
  readonly waypoint: PolicySet;
  /** Per bound Service (`namespace/name`): the waypoint set plus that Service's policies. */
  readonly services: ReadonlyMap<string, PolicySet>;
  /** Policy count in force, for create() to skip evaluation when there are none. */
  readonly policyCount: number;
  /** The mesh config's ext_authz providers whose service resolved, by name (CUSTOM's `provider.name`). */
  readonly providers: ReadonlyMap<string, ResolvedProvider>;
}

export const EMPTY_SET: PolicySet = { custom: [], deny: [], allow: [], audit: [] };

export function policyId(p: Pick<CompiledPolicy, 'namespace' | 'name'>, rule: number): string {
  return `ns[${p.namespace}]-policy[${p.name}]-rule[${rule}]`;
}
