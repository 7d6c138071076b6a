import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatFileError, readManifests } from './load.ts';
import { removeTrees, writeTree } from './test-support.ts';

afterAll(removeTrees);

const ns = (name: string) => `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n`;

describe('readManifests', () => {
  it('splits multi-document YAML, skips empty documents and numbers origins from 1', async () => {
    const dir = await writeTree({ 'all.yaml': `${ns('a')}---\n# only a comment\n---\n${ns('b')}` });
    const file = join(dir, 'all.yaml');
    const r = await readManifests([file]);
    expect(r.fileErrors).toEqual([]);
    expect(
      r.documents.map((d) => [d.origin, (d.value as { metadata: { name: string } }).metadata.name]),
    ).toEqual([
      [`${file}#1`, 'a'],
      [`${file}#3`, 'b'],
    ]);
  });

  it('gives a single-document file its bare path as origin', async () => {
    const dir = await writeTree({ 'one.yaml': ns('a') });
    const r = await readManifests([dir]);
    expect(r.documents.map((d) => d.origin)).toEqual([join(dir, 'one.yaml')]);
  });

  it('expands kind: List and typed lists, filling in the kind the API server leaves out', async () => {
    const list = JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [JSON.parse(JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a' } }))],
    });
    const typed = 'apiVersion: v1\nkind: ServiceList\nitems:\n  - metadata:\n      name: frontend\n';
    const dir = await writeTree({ 'list.json': list, 'typed.yaml': typed });
    const r = await readManifests([dir]);
    expect(r.documents.map((d) => d.origin)).toEqual([
      `${join(dir, 'list.json')}#1.items[0]`,
      `${join(dir, 'typed.yaml')}#1.items[0]`,
    ]);
    expect(r.documents[1]?.value).toMatchObject({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'frontend' },
    });
  });

  it('walks directories recursively in sorted order, for .yaml/.yml/.json only, skipping dot entries', async () => {
    const dir = await writeTree({
      'b/z.yml': ns('z'),
      'a.yaml': ns('a'),
      'b/c/deep.json': JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'deep' } }),
      'notes.txt': 'not a manifest',
      '..2024_01_01/a.yaml': ns('hidden'),
      '.git/config.yaml': ns('hidden2'),
    });
    const r = await readManifests([dir]);
    expect(r.files).toEqual([join(dir, 'a.yaml'), join(dir, 'b/c/deep.json'), join(dir, 'b/z.yml')]);
    expect(r.documents.map((d) => (d.value as { metadata: { name: string } }).metadata.name)).toEqual([
      'a',
      'deep',
      'z',
    ]);
  });

  it('reports a YAML syntax error with its line and still reads the other files', async () => {
    const dir = await writeTree({
      'bad.yaml': `${ns('ok')}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: [broken\n`,
      'good.yaml': ns('good'),
    });
    const r = await readManifests([dir]);
    expect(r.fileErrors).toHaveLength(1);
    const err = r.fileErrors[0]!;
    expect(err.path).toBe(join(dir, 'bad.yaml'));
    expect(err.line).toBeGreaterThanOrEqual(9);
    expect(formatFileError(err)).toMatch(new RegExp(`^${join(dir, 'bad.yaml')}: line \\d+, column \\d+: `));
    // Nothing from the broken file, not even its valid first document: the file is one unit.
    expect(r.documents.map((d) => d.file)).toEqual([join(dir, 'good.yaml')]);
  });

  it('reports broken JSON with a line number', async () => {
    const dir = await writeTree({ 'bad.json': '{\n  "apiVersion": "v1",\n  "kind": "Namespace",\n}\n' });
    const r = await readManifests([dir]);
    expect(r.fileErrors[0]).toMatchObject({ path: join(dir, 'bad.json'), line: 4 });
    expect(formatFileError(r.fileErrors[0]!)).toBe(
      `${join(dir, 'bad.json')}: line 4, column 1: Expected double-quoted property name`,
    );
  });

  it('reports a path that does not exist as a file error', async () => {
    const dir = await writeTree({ 'a.yaml': ns('a') });
    const missing = join(dir, 'nope');
    const r = await readManifests([missing, dir]);
    expect(r.fileErrors).toEqual([{ path: missing, reason: 'does not exist' }]);
    expect(r.documents).toHaveLength(1);
  });
});
