// Path normalization as Istio's default mesh option BASE configures Envoy (l7-semantics.md §2.6,
// IO-NORM): decode the %-escapes of unreserved characters, turn `\` into `/`, resolve `.` and `..`
// segments (RFC 3986 §5.2.4). `//` is kept (merging needs MERGE_SLASHES) and `%2F`/`%5C` stay
// encoded (that needs DECODE_AND_MERGE_SLASHES). `%00` is rejected. The query is untouched.

export type Normalized =
  | { readonly ok: true; readonly path: string }
  | { readonly ok: false; readonly why: string };

const NEEDS_WORK = /%|\\|\/\.|^\./;

function unreservedByte(code: number): boolean {
  return (
    code === 0x2d ||
    code === 0x2e ||
    code === 0x5f ||
    code === 0x7e ||
    (code >= 0x30 && code <= 0x39) ||
    (code >= 0x41 && code <= 0x5a) ||
    (code >= 0x61 && code <= 0x7a)
  );
}

function decodeUnreserved(path: string): string {
  return path.replace(/%([0-9a-fA-F]{2})/g, (whole, hex: string) => {
    const code = Number.parseInt(hex, 16);
    return unreservedByte(code) ? String.fromCharCode(code) : whole;
  });
}

/** RFC 3986 remove_dot_segments on an absolute path. */
export function removeDotSegments(path: string): string {
  const input = path.split('/');
  const out: string[] = [];
  // input[0] is '' for an absolute path.
  for (let i = 1; i < input.length; i++) {
    const seg = input[i]!;
    const last = i === input.length - 1;
    if (seg === '.') {
      if (last) out.push('');
    } else if (seg === '..') {
      out.pop();
      if (last) out.push('');
    } else out.push(seg);
  }
  return `/${out.join('/')}`;
}

/** Normalizes the path part of `pathAndQuery`; the query (from the first `?`) is kept verbatim. */
export function normalizePath(pathAndQuery: string): Normalized {
  const q = pathAndQuery.indexOf('?');
  const path = q < 0 ? pathAndQuery : pathAndQuery.slice(0, q);
  const query = q < 0 ? '' : pathAndQuery.slice(q);
  if (!NEEDS_WORK.test(path)) return { ok: true, path: pathAndQuery };
  if (/%00/.test(path)) return { ok: false, why: 'path contains %00' };
  let p = decodeUnreserved(path).replaceAll('\\', '/');
  if (!p.startsWith('/')) {
    // Only origin-form paths are normalized; `*` (OPTIONS) and absolute-form are left alone.
    return { ok: true, path: pathAndQuery };
  }
  p = removeDotSegments(p);
  return { ok: true, path: p + query };
}

/** The path without the query, as authorization matches it. */
export function pathOnly(pathAndQuery: string): string {
  const q = pathAndQuery.indexOf('?');
  return q < 0 ? pathAndQuery : pathAndQuery.slice(0, q);
}
