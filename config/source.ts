// Configuration from files: read → store (last good per resource) → compile, on demand and on every
// change. Directories are watched one directory at a time (config/watch-tree.ts), and a file is
// watched through its directory, so an editor that saves by writing a new file and renaming it over
// the old one, or a ConfigMap mount swapping its `..data` link, is seen every time.
import { type FSWatcher, watch as fsWatch, statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { CompileInput, FilterCompiler } from './compile.ts';
import { readManifests } from './load.ts';
import type { Snapshot } from './model.ts';
import type { Resource } from './resource.ts';
import { SnapshotSeries } from './snapshot-series.ts';
import { ResourceStore, type UpdateReport } from './store.ts';
import { TreeWatch } from './watch-tree.ts';

export interface FileConfigSourceOptions extends CompileInput {
  /** Quiet time after the last file event before reloading. Default 100 ms. */
  readonly debounceMs?: number;
  readonly filterCompilers?: Readonly<Record<string, FilterCompiler>>;
}

export interface UpdateResult {
  /** The new snapshot; undefined when the resources in force did not change. */
  readonly snapshot: Snapshot | undefined;
  readonly report: UpdateReport;
}

/** What the Waypoint gives a ConfigSource it builds (its configSource option). */
export interface ConfigSourceInput extends FileConfigSourceOptions {
  /**
   * Applies a mesh config that came with the configuration (the controller's `istio` ConfigMap);
   * undefined: there is none. Returns what is wrong with it, or undefined once applied.
   */
  readonly applyMeshConfig?: (text: string | undefined) => string | undefined;
}

/**
 * Where a waypoint's configuration comes from: files (FileConfigSource) or the controller's stream
 * (src/controller/config-client.ts). Both feed one ResourceStore and compile the same snapshots.
 */
export interface ConfigSource {
  /** The latest compiled snapshot, if any. */
  readonly current: Snapshot | undefined;
  /** Updates the store from what the source has now; reports like FileConfigSource.load. */
  load(): Promise<UpdateResult>;
  /** Compiles the resources in force again into a new snapshot (one version higher). */
  recompile(): Promise<Snapshot>;
  /** Hands every later update to onUpdate, a failed compile to onError. */
  watch(onUpdate: (r: UpdateResult) => void, onError?: (err: unknown) => void): void;
  close(): void;
  /** For /config_dump: where the configuration comes from and which version of it is applied. */
  describe(): Readonly<Record<string, unknown>>;
  /** The resources in force, each with where it came from. */
  readonly resources: readonly Resource[];
}

const DEFAULT_DEBOUNCE_MS = 100;

export class FileConfigSource implements ConfigSource {
  readonly #paths: readonly string[];
  readonly #opts: FileConfigSourceOptions;
  readonly #store = new ResourceStore();
  readonly #snapshots: SnapshotSeries;
  /** Loads run one at a time, in order; a change during a load queues one more. */
  #queue: Promise<unknown> = Promise.resolve();
  readonly #watchers = new Map<string, FSWatcher | TreeWatch>();
  #timer: NodeJS.Timeout | undefined;
  #onUpdate: ((r: UpdateResult) => void) | undefined;
  #onError: ((err: unknown) => void) | undefined;
  #closed = false;

  constructor(paths: readonly string[], opts: FileConfigSourceOptions) {
    this.#paths = [...paths];
    this.#opts = opts;
    this.#snapshots = new SnapshotSeries(opts, opts.filterCompilers);
  }

  /** The latest compiled snapshot, if any load has produced one. */
  get current(): Snapshot | undefined {
    return this.#snapshots.current;
  }

  /** The resources in force, each with the file (and document) it came from. */
  get resources(): readonly Resource[] {
    return this.#store.resources();
  }

  /**
   * Reads every path, updates the store and, if the resources in force changed (always on the first
   * call), compiles a snapshot one version higher than the last. Rejects only if a filter compiler
   * throws; the previous snapshot then stays current.
   */
  load(): Promise<UpdateResult> {
    const run = this.#queue.then(() => this.#loadNow());
    this.#queue = run.catch(() => {});
    return run;
  }

  /**
   * Compiles the resources in force again into a new snapshot (one version higher), without reading
   * the files: for inputs of the filter compilers that changed outside them (a reloaded mesh config).
   */
  recompile(): Promise<Snapshot> {
    const run = this.#queue.then(() => this.#compileNow());
    this.#queue = run.catch(() => {});
    return run;
  }

  #compileNow(): Snapshot {
    return this.#snapshots.compile(this.#store.resources());
  }

  async #loadNow(): Promise<UpdateResult> {
    const loaded = await readManifests(this.#paths);
    const report = this.#store.update(loaded);
    if (!report.changed) return { snapshot: undefined, report };
    return { snapshot: this.#compileNow(), report };
  }

  /**
   * Reloads after file changes (debounced) and hands every result to onUpdate, changed or not, so
   * rejections of a bad edit are reported even though the snapshot stays. onError receives a failed
   * compile. Call load() first for the initial snapshot; watch() does not load by itself.
   */
  watch(onUpdate: (r: UpdateResult) => void, onError?: (err: unknown) => void): void {
    this.#onUpdate = onUpdate;
    this.#onError = onError;
    this.#arm();
  }

  describe(): Readonly<Record<string, unknown>> {
    return { type: 'files', paths: this.#paths, version: this.#snapshots.current?.version ?? null };
  }

  /** Stops watching; a load in progress still completes, but reports nothing. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const w of this.#watchers.values()) w.close();
    this.#watchers.clear();
  }

  /**
   * Starts a watcher for every path that has none (again after a watched directory was removed), and
   * has each watched tree pick up the directories created since.
   */
  #arm(): void {
    if (this.#closed || !this.#onUpdate) return;
    for (const p of this.#paths) {
      const target = watchTarget(p);
      if (!target) continue;
      const key = target.only ?? target.dir;
      const existing = this.#watchers.get(key);
      // A directory that became a missing path (or the reverse) is watched the other way now.
      if (existing && existing instanceof TreeWatch === !target.only) {
        if (existing instanceof TreeWatch) existing.rescan();
        continue;
      }
      existing?.close();
      if (target.only) this.#watchFile(key, target.dir, target.only);
      else this.#watchTree(key, target.dir);
    }
  }

  #watchTree(key: string, dir: string): void {
    const tree = new TreeWatch(dir, () => this.#schedule());
    this.#watchers.set(key, tree);
    tree.rescan();
  }

  /** A file through its directory: its own name, or a kubelet `..data` swap behind a link to it. */
  #watchFile(key: string, dir: string, file: string): void {
    const name = basename(file);
    try {
      const w = fsWatch(dir, { persistent: false }, (_event, filename) => {
        const f = filename?.toString();
        if (f === undefined || f === name || f.startsWith('..')) this.#schedule();
      });
      w.on('error', () => {
        w.close();
        this.#watchers.delete(key);
        this.#schedule();
      });
      this.#watchers.set(key, w);
    } catch {
      // The directory vanished between stat and watch; the next reload re-arms.
    }
  }

  #schedule(): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      // Watch new directories before reading, so a file written into one right after is not missed.
      this.#arm();
      this.load().then(
        (r) => {
          if (this.#closed) return;
          this.#arm();
          this.#onUpdate?.(r);
        },
        (err: unknown) => {
          if (!this.#closed) this.#onError?.(err);
        },
      );
    }, this.#opts.debounceMs ?? DEFAULT_DEBOUNCE_MS);
  }
}

interface WatchTarget {
  readonly dir: string;
  /** For a file: its absolute path, since its directory may hold other files. */
  readonly only?: string;
}

/**
 * A directory is watched itself, with everything under it. A file, or a path that does not exist yet, is
 * watched through its parent, so replacing or creating it is seen.
 */
function watchTarget(path: string): WatchTarget | undefined {
  const abs = resolve(path);
  try {
    if (statSync(abs).isDirectory()) return { dir: abs };
  } catch {
    // Missing: fall through to the parent.
  }
  const parent = dirname(abs);
  try {
    if (statSync(parent).isDirectory()) return { dir: parent, only: abs };
  } catch {
    return undefined;
  }
  return undefined;
}
