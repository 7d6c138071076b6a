// Envoy's response flags for one request: the reason's own flag plus what happened on the way
// (DI a fault delay, URX retries exhausted, UO a retry refused by the retry budget), joined with
// `,` as Envoy prints them. Filters and layers note flags here; the access log and metrics read
// the same string, so both say the same thing.
import type { RequestContext } from './context.ts';
import { REASONS, type Reason } from './reasons.ts';

const NOTED = Symbol('responseFlags');

export function noteFlag(ctx: RequestContext, flag: string): void {
  const list = ctx.attributes.get(NOTED) as string[] | undefined;
  if (!list) ctx.attributes.set(NOTED, [flag]);
  else if (!list.includes(flag)) list.push(flag);
}

export function responseFlags(ctx: RequestContext, reason: Reason): string {
  const own = REASONS[reason].flag;
  const noted = ctx.attributes.get(NOTED) as string[] | undefined;
  if (!noted) return own;
  const all = own === '-' ? [...noted] : [own, ...noted.filter((f) => f !== own)];
  return all.join(',');
}
