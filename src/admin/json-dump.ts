// JSON for the admin pages: Maps become objects (string keys) and Sets arrays, so every section of
// the compiled configuration renders; RegExps print their source; functions are left out; an
// object seen again inside itself prints as "[circular]" instead of failing the whole page.
export function toJson(value: unknown): string {
  // The path from the root: what each value was, and what it was rendered as (the next holder).
  const originals: object[] = [];
  const rendered: unknown[] = [];
  return JSON.stringify(
    value,
    function (this: unknown, _key, v: unknown) {
      if (typeof v === 'function' || typeof v === 'symbol') return undefined;
      if (typeof v === 'bigint') return v.toString();
      if (v === null || typeof v !== 'object') return v;
      // JSON.stringify calls the replacer with `this` = the holder: trim the path to it.
      while (rendered.length > 0 && rendered.at(-1) !== this) {
        rendered.pop();
        originals.pop();
      }
      if (originals.includes(v)) return '[circular]';
      const out =
        v instanceof Map
          ? Object.fromEntries([...v].map(([k, x]) => [String(k), x]))
          : v instanceof Set
            ? [...v]
            : v instanceof RegExp
              ? v.source
              : v;
      originals.push(v);
      rendered.push(out);
      return out;
    },
    2,
  );
}
