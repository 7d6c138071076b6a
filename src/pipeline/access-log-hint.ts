// What a filter tells the access log about a request (Envoy's access_log_hint, which Istio's RBAC
// filter sets on an AUDIT match): the request is logged whatever the access-log mode filters out
// (except `off`), and the line names why.
import type { RequestContext } from './context.ts';

const AUDIT = Symbol('access-log.audit');

/** An enforced AUDIT rule matched: `ns[NS]-policy[NAME]-rule[I]`. */
export function setAuditHint(ctx: RequestContext, rule: string): void {
  ctx.attributes.set(AUDIT, rule);
}

/** The AUDIT rule that marked the request for logging, if any. */
export function auditHint(ctx: RequestContext): string | undefined {
  return ctx.attributes.get(AUDIT) as string | undefined;
}
