import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { FileConfigSource, type UpdateResult } from './source.ts';
import { docs, namespace, OPTS, removeTrees, service, waypointGateway, writeTree } from './test-support.ts';

afterAll(removeTrees);

const sources: FileConfigSource[] = [];
afterEach(() => {
  for (const s of sources.splice(0)) s.close();
});

const world = (ip: string) =>
  docs(
    waypointGateway(),
    namespace('bank', { 'istio.io/use-waypoint': 'waypoint' }),
    service({ name: 'frontend', clusterIP: ip }),
  );

function open(paths: string[]): FileConfigSource {
  const s = new FileConfigSource(paths, { ...OPTS, debounceMs: 20 });
  sources.push(s);
  return s;
}

/** Collects watch results; next() resolves with the first one matching. */
function watcher(source: FileConfigSource) {
  const results: UpdateResult[] = [];
  const waiting: Array<{ match: (r: UpdateResult) => boolean; resolve: (r: UpdateResult) => void }> = [];
  source.watch((r) => {
    results.push(r);
    for (const w of [...waiting]) {
      if (w.match(r)) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve(r);
      }
    }
  });
  return {
    results,
    next(match: (r: UpdateResult) => boolean): Promise<UpdateResult> {
      return new Promise((resolve) => waiting.push({ match, resolve }));
    },
  };
}

describe('FileConfigSource', () => {
  it('compiles on the first load and only when something changed after that', async () => {
    const dir = await writeTree({ 'config.yaml': world('127.0.10.1') });
    const source = open([dir]);
    const first = await source.load();
    expect(first.snapshot?.version).toBe(1);
    expect([...(first.snapshot?.services.keys() ?? [])]).toEqual(['127.0.10.1:80']);
    const again = await source.load();
    expect(again.snapshot).toBeUndefined();
    expect(again.report.changed).toBe(false);
    expect(source.current).toBe(first.snapshot);
  });

  it('produces a new snapshot with a higher version when a watched file is edited', async () => {
    const dir = await writeTree({ 'nested/config.yaml': world('127.0.10.1') });
    const source = open([dir]);
    await source.load();
    const w = watcher(source);

    const edited = w.next((r) => r.snapshot !== undefined);
    await writeFile(join(dir, 'nested/config.yaml'), world('127.0.10.2'));
    const r = await edited;
    expect(r.snapshot?.version).toBe(2);
    expect([...(r.snapshot?.services.keys() ?? [])]).toEqual(['127.0.10.2:80']);

    // An editor that writes a new file and renames it over the old one.
    const replaced = w.next((x) => x.snapshot !== undefined);
    await writeFile(join(dir, 'nested/.config.yaml.swp'), world('127.0.10.3'));
    await rename(join(dir, 'nested/.config.yaml.swp'), join(dir, 'nested/config.yaml'));
    const r2 = await replaced;
    expect(r2.snapshot?.version).toBe(3);
    expect([...(r2.snapshot?.services.keys() ?? [])]).toEqual(['127.0.10.3:80']);
  });

  it('watches a single file through its directory and reports a bad edit without a new snapshot', async () => {
    const dir = await writeTree({ 'config.yaml': world('127.0.10.1') });
    const file = join(dir, 'config.yaml');
    const source = open([file]);
    const first = await source.load();
    const w = watcher(source);

    const rejected = w.next((r) => r.report.rejected.length > 0);
    await writeFile(file, world('127.0.10.999'));
    const r = await rejected;
    expect(r.snapshot).toBeUndefined();
    expect(r.report.rejected[0]?.message).toContain(`${file}#3: Service bank/frontend: spec.clusterIP:`);
    expect(r.report.rejected[0]?.message).toContain(`keeping the last good version from ${file}#3`);
    expect(source.current).toBe(first.snapshot);

    const fixed = w.next((x) => x.snapshot !== undefined);
    await writeFile(file, world('127.0.10.4'));
    expect((await fixed).snapshot?.version).toBe(2);
  });
});
