import { renameSync, writeFileSync } from 'node:fs';
import { mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
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

  describe('sees every change however it is written, many times in a row', () => {
    const ROUNDS = 3;
    const ip = (i: number) => `127.0.11.${i + 1}`;
    // An editor's pause between saves, not a wait for an event: Node's recursive watch lost a
    // replaced file only once it had settled, so saves in a quick burst hid the bug.
    const editorPause = () => new Promise((resolve) => setTimeout(resolve, 150));

    /** Runs write(i) for each round and waits for the snapshot that serves round i's address. */
    async function eachRound(source: FileConfigSource, write: (i: number) => Promise<void>): Promise<void> {
      await source.load();
      const w = watcher(source);
      for (let i = 0; i < ROUNDS; i++) {
        const served = w.next((r) => r.snapshot?.services.has(`${ip(i)}:80`) === true);
        await write(i);
        await served;
        await editorPause();
      }
    }

    it('edits in place', async () => {
      const dir = await writeTree({ 'a/config.yaml': world('127.0.11.99') });
      await eachRound(open([dir]), (i) => writeFile(join(dir, 'a/config.yaml'), world(ip(i))));
    });

    it('writes a new file and renames it over the old one, as editors save', async () => {
      const dir = await writeTree({ 'config.yaml': world('127.0.11.99') });
      await eachRound(open([dir]), async (i) => {
        // Synchronous, as an editor's save is: one write and one rename with nothing in between.
        writeFileSync(join(dir, '.config.yaml.tmp'), world(ip(i)));
        renameSync(join(dir, '.config.yaml.tmp'), join(dir, 'config.yaml'));
      });
    });

    it('renames over a file named on its own', async () => {
      const dir = await writeTree({ 'config.yaml': world('127.0.11.99') });
      await eachRound(open([join(dir, 'config.yaml')]), async (i) => {
        await writeFile(join(dir, '.config.yaml.tmp'), world(ip(i)));
        await rename(join(dir, '.config.yaml.tmp'), join(dir, 'config.yaml'));
      });
    });

    /** A ConfigMap volume as kubelet writes it: config.yaml → ..data/config.yaml, ..data → ..vN. */
    async function configMapVolume(): Promise<{ dir: string; swap: (i: number) => Promise<void> }> {
      const dir = await writeTree({ '..v0/config.yaml': world('127.0.11.99') });
      await symlink('..v0', join(dir, '..data'));
      await symlink('..data/config.yaml', join(dir, 'config.yaml'));
      const swap = async (i: number): Promise<void> => {
        await mkdir(join(dir, `..v${i + 1}`));
        await writeFile(join(dir, `..v${i + 1}/config.yaml`), world(ip(i)));
        await symlink(`..v${i + 1}`, join(dir, '..data_tmp'));
        await rename(join(dir, '..data_tmp'), join(dir, '..data'));
        await rm(join(dir, `..v${i}`), { recursive: true });
      };
      return { dir, swap };
    }

    it('follows a ConfigMap volume through its ..data link swaps', async () => {
      const { dir, swap } = await configMapVolume();
      await eachRound(open([dir]), swap);
    });

    it('follows a file of a ConfigMap volume named on its own', async () => {
      const { dir, swap } = await configMapVolume();
      await eachRound(open([join(dir, 'config.yaml')]), swap);
    });

    it('reads files added in new subdirectories, and their later edits', async () => {
      const dir = await writeTree({ 'config.yaml': world('127.0.11.99') });
      await rm(join(dir, 'config.yaml'));
      await eachRound(open([dir]), async (i) => {
        if (i > 0) await rm(join(dir, `new${i - 1}`), { recursive: true });
        await mkdir(join(dir, `new${i}/deeper`), { recursive: true });
        await writeFile(join(dir, `new${i}/deeper/config.yaml`), world(ip(i)));
      });
      const source = open([dir]);
      await eachRound(source, async (i) => {
        const last = join(dir, `new${ROUNDS - 1}/deeper`);
        await writeFile(join(last, '.tmp'), world(ip(i)));
        await rename(join(last, '.tmp'), join(last, 'config.yaml'));
      });
    });
  });
});
