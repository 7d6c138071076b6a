// The request target as Envoy's codecs and connection manager accept it, decided before any filter
// runs, so policies, routes and the upstream all see one path (RFC 9112 §3.2). Absolute-form
// (`GET http://svc/admin`) becomes origin-form with the URI's authority as Host: left as it was,
// a DENY on `/admin*` would not match while the application still routes it as /admin.

export type RequestTarget =
  | { readonly kind: 'origin'; readonly path: string; readonly authority: string }
  | {
      readonly kind: 'reject';
      readonly reason: 'invalid_request_target' | 'absolute_path_rejected';
      readonly detail: string;
    };

// undici's own rule for a request path (anything outside it is refused at dispatch), and RFC 3986's
// characters for an authority.
const PATH_CHARS = /^[\u0021-\u00ff]*$/;
const AUTHORITY = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=%]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;
const ABSOLUTE = /^https?:\/\//i;

/** `absoluteForm`: HTTP/1.x only; an HTTP/2 `:path` must be origin-form or `*` (RFC 9113 §8.3.1). */
export function requestTarget(
  method: string,
  target: string,
  authority: string,
  absoluteForm: boolean,
): RequestTarget {
  if (target.startsWith('/')) return originForm(target, authority);
  // Asterisk-form is OPTIONS' alone; Envoy then refuses it as a path that is not relative.
  if (target === '*') {
    return method === 'OPTIONS'
      ? reject('absolute_path_rejected', 'asterisk-form')
      : reject('invalid_request_target', `asterisk-form with ${method}`);
  }
  if (absoluteForm && ABSOLUTE.test(target)) return fromAbsolute(target);
  return reject('invalid_request_target', 'neither origin-form nor absolute-form');
}

function fromAbsolute(target: string): RequestTarget {
  const rest = target.slice(target.indexOf('//') + 2);
  const end = rest.search(/[/?#]/);
  const authority = end < 0 ? rest : rest.slice(0, end);
  // userinfo@ is deprecated (RFC 9110 §4.2.4) and a classic way to disguise a host.
  if (!AUTHORITY.test(authority))
    return reject('invalid_request_target', 'invalid authority in absolute-form');
  const tail = end < 0 ? '' : rest.slice(end);
  return originForm(tail.startsWith('/') ? tail : `/${tail}`, authority);
}

function originForm(path: string, authority: string): RequestTarget {
  // A fragment never belongs in a request (Envoy rejects it rather than guess what was meant).
  if (path.includes('#')) return reject('invalid_request_target', 'fragment in the request target');
  return PATH_CHARS.test(path)
    ? { kind: 'origin', path, authority }
    : reject('invalid_request_target', 'invalid characters in the path');
}

function reject(reason: 'invalid_request_target' | 'absolute_path_rejected', detail: string): RequestTarget {
  return { kind: 'reject', reason, detail };
}
