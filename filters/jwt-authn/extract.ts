// Where a token is found, as Envoy's jwt_authn extractor looks: headers (with an optional value
// prefix, found anywhere in the value; the token is the run of base64url characters and dots after
// it), query parameters, cookies. A header without the prefix holds no token for that location.
import type { IncomingHttpHeaders } from 'node:http';
import type { JwtRule } from './config.ts';

export type TokenLocation =
  | { readonly kind: 'header'; readonly name: string }
  | { readonly kind: 'param'; readonly name: string }
  | { readonly kind: 'cookie'; readonly name: string };

export interface ExtractedToken {
  readonly token: string;
  readonly location: TokenLocation;
}

const TOKEN_CHARS = /[A-Za-z0-9\-_.]+/;

/** The token after `after` in a header value: the first run of base64url characters and dots. */
export function tokenAfter(value: string, after: number): string {
  const m = TOKEN_CHARS.exec(value.slice(after));
  return m ? m[0] : '';
}

function headerValues(headers: IncomingHttpHeaders, name: string): string[] {
  const v = headers[name];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [String(v)];
}

export function parseCookies(header: string | string[] | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (header === undefined) return out;
  for (const line of Array.isArray(header) ? header : [header]) {
    for (const part of line.split(';')) {
      const eq = part.indexOf('=');
      if (eq < 0) continue;
      const name = part.slice(0, eq).trim();
      let value = part.slice(eq + 1).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      if (name && !out.has(name)) out.set(name, value);
    }
  }
  return out;
}

function queryParams(path: string): URLSearchParams | undefined {
  const q = path.indexOf('?');
  if (q < 0) return undefined;
  const hash = path.indexOf('#', q);
  return new URLSearchParams(path.slice(q + 1, hash < 0 ? undefined : hash));
}

/** Every token at the rule's locations, in location order (headers, params, cookies). */
export function extractTokens(
  rule: Pick<JwtRule, 'fromHeaders' | 'fromParams' | 'fromCookies'>,
  headers: IncomingHttpHeaders,
  path: string,
): ExtractedToken[] {
  const out: ExtractedToken[] = [];
  for (const h of rule.fromHeaders) {
    for (const value of headerValues(headers, h.name)) {
      let token: string;
      if (h.prefix) {
        const pos = value.indexOf(h.prefix);
        if (pos < 0) continue;
        token = tokenAfter(value, pos + h.prefix.length);
      } else token = value.trim();
      if (token) out.push({ token, location: { kind: 'header', name: h.name } });
    }
  }
  if (rule.fromParams.length > 0) {
    const params = queryParams(path);
    if (params) {
      for (const name of rule.fromParams) {
        for (const token of params.getAll(name)) {
          if (token) out.push({ token, location: { kind: 'param', name } });
        }
      }
    }
  }
  if (rule.fromCookies.length > 0) {
    const cookies = parseCookies(headers.cookie);
    for (const name of rule.fromCookies) {
      const token = cookies.get(name);
      if (token) out.push({ token, location: { kind: 'cookie', name } });
    }
  }
  return out;
}

/**
 * Removes a verified token before the request goes upstream (forwardOriginalToken false). Like
 * Envoy, only header locations are removed (the whole header); parameters and cookies stay.
 */
export function removeToken(headers: IncomingHttpHeaders, location: TokenLocation): void {
  if (location.kind === 'header') delete headers[location.name];
}
