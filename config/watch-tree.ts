// Watches a directory tree with one non-recursive watch per directory. Node's own `recursive`
// watch on Linux follows files, not names: after a file is replaced by a rename it reports nothing
// more for that name, so an editor's second save or a kubelet ConfigMap update went unseen. A
// directory watch reports every create, rename and write of the names in it, whatever the inode.
// rescan() picks up directories created since (call it before each read, so none is missed).
import { type FSWatcher, watch as fsWatch, readdirSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';

export class TreeWatch {
  readonly #root: string;
  readonly #onEvent: () => void;
  /** By real path, so a directory reached through two links has one watch. */
  readonly #watchers = new Map<string, FSWatcher>();
  #closed = false;

  constructor(root: string, onEvent: () => void) {
    this.#root = root;
    this.#onEvent = onEvent;
  }

  /** Watches every directory of the tree that has no watch yet, and drops those that are gone. */
  rescan(): void {
    if (this.#closed) return;
    const present = new Set<string>();
    this.#walk(this.#root, present);
    for (const [dir, w] of this.#watchers) {
      if (present.has(dir)) continue;
      w.close();
      this.#watchers.delete(dir);
    }
  }

  close(): void {
    this.#closed = true;
    for (const w of this.#watchers.values()) w.close();
    this.#watchers.clear();
  }

  /** The directories load.ts reads: links followed, names starting with `.` skipped. */
  #walk(dir: string, present: Set<string>): void {
    let real: string;
    try {
      real = realpathSync(dir);
    } catch {
      return;
    }
    if (present.has(real)) return;
    present.add(real);
    this.#watch(real);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const path = join(dir, name);
      if (isDirectory(path)) this.#walk(path, present);
    }
  }

  #watch(dir: string): void {
    if (this.#watchers.has(dir)) return;
    try {
      const w = fsWatch(dir, { persistent: false }, () => this.#onEvent());
      w.on('error', () => {
        // The directory went away; the reload that follows rescans.
        w.close();
        if (this.#watchers.get(dir) === w) this.#watchers.delete(dir);
        this.#onEvent();
      });
      this.#watchers.set(dir, w);
    } catch {
      // Removed between readdir and watch: its parent's event brings a rescan.
    }
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
