// The access-log encoding from Istio's mesh config (`accessLogEncoding: TEXT | JSON`), in a MeshConfig
// YAML or the `istio` ConfigMap holding it in `data.mesh`. Read at start; a flag wins over it.
import { parse } from 'yaml';
import { type AccessLogEncoding, parseAccessLogEncoding } from './access-log.ts';

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Undefined when the mesh config does not say; throws naming the field when it says something else. */
export function meshAccessLogEncoding(text: string): AccessLogEncoding | undefined {
  let doc: unknown = parse(text);
  if (isObj(doc) && doc.kind === 'ConfigMap')
    doc = isObj(doc.data) ? parse(String(doc.data.mesh ?? '')) : undefined;
  if (!isObj(doc) || doc.accessLogEncoding === undefined || doc.accessLogEncoding === null) return undefined;
  try {
    return parseAccessLogEncoding(String(doc.accessLogEncoding));
  } catch (err) {
    throw new Error(`accessLogEncoding: ${(err as Error).message}`);
  }
}
