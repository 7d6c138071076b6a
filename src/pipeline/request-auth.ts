// What JWT authentication (RequestAuthentication) hands to the filters after it: the request's
// authenticated principal and claims, or nothing when the request carried no token. Authorization
// reads it for requestPrincipals and the request.auth.* `when` keys.
import type { RequestContext } from './context.ts';

export interface RequestAuth {
  /** `ISSUER/SUBJECT`, as Istio's requestPrincipals spell it. */
  readonly principal: string;
  readonly issuer: string;
  readonly subject: string;
  /** The token's audiences (aud, as a list). */
  readonly audiences: readonly string[];
  /** azp claim, when present. */
  readonly presenter: string | undefined;
  /** Every claim of the verified token. */
  readonly claims: Readonly<Record<string, unknown>>;
}

const REQUEST_AUTH = Symbol('request-auth');

export function setRequestAuth(ctx: RequestContext, auth: RequestAuth): void {
  ctx.attributes.set(REQUEST_AUTH, auth);
}

export function requestAuth(ctx: RequestContext): RequestAuth | undefined {
  return ctx.attributes.get(REQUEST_AUTH) as RequestAuth | undefined;
}
