// The snapshots one configuration source compiles, numbered one higher each time: files and the
// controller's stream both compile their store's resources through it.
import { type CompileInput, compileSnapshot, type FilterCompiler } from './compile.ts';
import type { Snapshot } from './model.ts';
import type { Resource } from './resource.ts';

export class SnapshotSeries {
  readonly #input: CompileInput;
  readonly #filterCompilers: Readonly<Record<string, FilterCompiler>> | undefined;
  #current: Snapshot | undefined;

  constructor(input: CompileInput, filterCompilers?: Readonly<Record<string, FilterCompiler>>) {
    this.#input = input;
    this.#filterCompilers = filterCompilers;
  }

  /** The latest snapshot, if one was compiled. */
  get current(): Snapshot | undefined {
    return this.#current;
  }

  /** Compiles resources into the next snapshot, which becomes current. Throws if a filter compiler does. */
  compile(resources: readonly Resource[]): Snapshot {
    const next = compileSnapshot(
      resources,
      this.#input,
      (this.#current?.version ?? 0) + 1,
      this.#filterCompilers,
    );
    this.#current = next;
    return next;
  }
}
