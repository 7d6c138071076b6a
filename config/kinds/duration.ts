// Durations in the two forms routing config uses: Gateway API (`1h30m`, `500ms`; GEP-2257) and
// Istio's protobuf Duration JSON or Go form (`1.5s`, `1h2m3.5s`, `250ms`). Both parse to milliseconds.
// The zod leaves make a bad duration a validation error at its field path, so the compiler can
// call the parse functions on validated input without a try.
import { z } from 'zod';
import { show } from './common.ts';

const GATEWAY_DURATION = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;
// `ms` before `m`, so `5ms` is not read as 5 minutes followed by a stray `s`.
const GATEWAY_PART = /([0-9]{1,5})(ms|h|m|s)/g;
const ISTIO_DURATION = /^([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h)/;

const UNIT_MS: Readonly<Record<string, number>> = {
  h: 3_600_000,
  m: 60_000,
  s: 1000,
  ms: 1,
  us: 0.001,
  µs: 0.001,
  ns: 0.000001,
};

/** Gateway API duration (`^([0-9]{1,5}(h|m|s|ms)){1,4}$`) in milliseconds; throws on anything else. */
export function parseGatewayDuration(text: string): number {
  if (typeof text !== 'string' || !GATEWAY_DURATION.test(text)) {
    throw new Error(`invalid Gateway API duration ${show(text)} (expected e.g. "10s", "1h30m", "500ms")`);
  }
  let ms = 0;
  for (const [, n, unit] of text.matchAll(GATEWAY_PART)) ms += Number(n) * (UNIT_MS[unit as string] ?? 0);
  return ms;
}

/** Istio duration (`1.5s`, `1h2m3.5s`, `250ms`, `0`) in milliseconds; throws on anything else. */
export function parseIstioDuration(text: string): number {
  const bad = () =>
    new Error(`invalid duration ${show(text)} (expected e.g. "1s", "0.5s", "250ms", "1h30m")`);
  if (typeof text !== 'string' || text === '') throw bad();
  if (text === '0') return 0;
  let rest = text;
  let ms = 0;
  while (rest !== '') {
    const m = ISTIO_DURATION.exec(rest);
    if (!m) throw bad();
    ms += Number(m[1]) * (UNIT_MS[m[3] as string] ?? 0);
    rest = rest.slice(m[0].length);
  }
  if (!Number.isFinite(ms)) throw bad();
  return ms;
}

function durationLeaf(parse: (s: string) => number, expected: string) {
  return z.custom<string>(
    (v) => {
      if (typeof v !== 'string') return false;
      try {
        parse(v);
        return true;
      } catch {
        return false;
      }
    },
    {
      error: (iss) => (iss.input === undefined ? 'required' : `expected ${expected}, got ${show(iss.input)}`),
    },
  );
}

/** A Gateway API duration string, kept as text; parse with parseGatewayDuration. */
export const gatewayDuration = durationLeaf(
  parseGatewayDuration,
  'a duration like "10s", "1h30m" or "500ms"',
);

/** An Istio (protobuf/Go) duration string, kept as text; parse with parseIstioDuration. */
export const istioDuration = durationLeaf(
  parseIstioDuration,
  'a duration like "1s", "0.5s", "250ms" or "1h30m"',
);
