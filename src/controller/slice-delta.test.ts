import { describe, expect, it } from 'vitest';
import { sliceDelta } from './slice-delta.ts';
import type { KubeDocument } from './slice-source.ts';

const doc = (name: string, rv?: string, extra: Record<string, unknown> = {}): KubeDocument => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'shop', ...(rv ? { resourceVersion: rv } : {}) },
  ...extra,
});
const slice = (...docs: KubeDocument[]) => ({
  version: 'v',
  documents: new Map(docs.map((d) => [`/Service/shop/${d.metadata.name}`, d])),
});

describe('sliceDelta', () => {
  it('sends everything when nothing was sent', () => {
    const d = sliceDelta(undefined, slice(doc('a', '1'), doc('b', '2')));
    expect(d.upserts.map(([k]) => k)).toEqual(['/Service/shop/a', '/Service/shop/b']);
    expect(d.removes).toEqual([]);
  });

  it('sends documents whose resourceVersion moved, and the keys that are gone', () => {
    const first = sliceDelta(undefined, slice(doc('a', '1'), doc('b', '2'), doc('c', '3')));
    const d = sliceDelta(first.next, slice(doc('a', '1'), doc('b', '7')));
    expect(d.upserts.map(([k]) => k)).toEqual(['/Service/shop/b']);
    expect(d.removes).toEqual(['/Service/shop/c']);
  });

  it('compares content for documents without a resourceVersion', () => {
    const first = sliceDelta(undefined, slice(doc('a', undefined, { spec: { x: 1 } })));
    expect(sliceDelta(first.next, slice(doc('a', undefined, { spec: { x: 1 } }))).upserts).toEqual([]);
    expect(sliceDelta(first.next, slice(doc('a', undefined, { spec: { x: 2 } }))).upserts).toHaveLength(1);
  });
});
