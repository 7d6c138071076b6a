// What a waypoint must be sent to go from what it has to a slice: the documents that are new or
// changed, and the keys that are gone. A document changed when its resourceVersion did (or, for a
// document without one, its content).
import type { DocumentKey, KubeDocument, Slice } from './slice-source.ts';

/** What one waypoint has been sent: key → resourceVersion (or the content, without one). */
export type SentState = ReadonlyMap<DocumentKey, string>;

export interface SliceDelta {
  readonly upserts: readonly (readonly [DocumentKey, KubeDocument])[];
  readonly removes: readonly DocumentKey[];
  /** What the waypoint has once it applies the delta. */
  readonly next: SentState;
}

export function fingerprint(doc: KubeDocument): string {
  const rv = doc.metadata.resourceVersion;
  return rv ? `rv:${rv}` : `json:${JSON.stringify(doc)}`;
}

/** The delta from sent to slice; with nothing sent yet, every document (a full snapshot). */
export function sliceDelta(sent: SentState | undefined, slice: Slice): SliceDelta {
  const next = new Map<DocumentKey, string>();
  const upserts: Array<readonly [DocumentKey, KubeDocument]> = [];
  for (const [key, doc] of slice.documents) {
    const print = fingerprint(doc);
    next.set(key, print);
    if (sent?.get(key) !== print) upserts.push([key, doc]);
  }
  const removes: DocumentKey[] = [];
  if (sent) for (const key of sent.keys()) if (!next.has(key)) removes.push(key);
  return { upserts, removes, next };
}
