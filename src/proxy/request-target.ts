// The request target at intake, as Envoy's HTTP/1 codec and connection manager take it: origin-form
// passes; http(s) absolute-form becomes origin-form (path from the URI, authority from its host,
// RFC 9112 §3.2.2) before any filter runs, so policies, routes and the upstream see one path;
// everything else is refused before a body byte is read. HTTP/2 `:path` obeys the same rules.
import type { Verdict } from '../pipeline/filter.ts';
import type { Reason } from '../pipeline/reasons.ts';

export type TargetCheck =
  | { readonly ok: true; readonly path: string; readonly authority?: string }
  | { readonly ok: false; readonly reason: Reason; readonly detail: string };

/** Bytes undici (and any HTTP/1.1 upstream) cannot put in a request line: controls, space, DEL. */
const UNSENDABLE = /[^\x21-\x7e\x80-\xff]/;
const SCHEME = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//;
/** host or [v6] with an optional port; no userinfo, nothing else. */
const AUTHORITY = /^(?:[a-zA-Z0-9._~!$&'()*+,;=%-]+|\[[0-9a-fA-F:.]+\])(?::\d{0,5})?$/;

const refuse = (detail: string): TargetCheck => ({
  ok: false,
  reason: 'downstream_bad_request_target',
  detail,
});

export function checkRequestTarget(method: string, target: string): TargetCheck {
  if (target.length === 0) return refuse('empty request target');
  if (UNSENDABLE.test(target)) return refuse('request target holds a control character or space');
  if (target.startsWith('/')) return { ok: true, path: target };
  if (target === '*') {
    if (method !== 'OPTIONS') return refuse('asterisk-form is only for OPTIONS');
    return { ok: false, reason: 'downstream_asterisk_form', detail: 'OPTIONS * is not proxied' };
  }
  const scheme = SCHEME.exec(target);
  if (!scheme) return refuse('request target is neither origin-form nor absolute-form');
  const name = scheme[1]!.toLowerCase();
  if (name !== 'http' && name !== 'https') return refuse(`absolute-form with scheme ${name}`);
  const rest = target.slice(scheme[0].length);
  const end = rest.search(/[/?#]/);
  const authority = end < 0 ? rest : rest.slice(0, end);
  if (!AUTHORITY.test(authority)) return refuse('absolute-form without a valid host (userinfo is refused)');
  let path = end < 0 ? '/' : rest.slice(end);
  if (path.startsWith('#')) path = '/';
  else if (path.startsWith('?')) path = `/${path}`;
  return { ok: true, path: path.replace(/#.*$/, ''), authority };
}

/** What a downstream adapter found wrong with the head itself (duplicate Host, ...). */
export interface HeadRefusal {
  readonly reason: Reason;
  readonly detail: string;
}

/**
 * The intake decision for one request head: the adapter's refusal first, then the target. A
 * refusal is a reply verdict that closes an HTTP/1 connection, as Envoy does after a codec error.
 */
export function intakeVerdict(
  refusal: HeadRefusal | undefined,
  check: TargetCheck,
  http2: boolean,
): Verdict | undefined {
  const bad = refusal ?? (check.ok ? undefined : check);
  if (!bad) return undefined;
  // HTTP/2 has no connection-specific headers: the stream ends, the session lives on.
  const headers = http2 ? {} : { connection: 'close' };
  return { kind: 'reply', reason: bad.reason, detail: bad.detail, headers };
}
