// One load of the configuration for the offline commands (`explain`, `validate`): the same
// FileConfigSource and filter compilers as `run` (the CLI passes the chain's factories), read once
// and not watched.
import type { FilterCompiler } from '../../config/compile.ts';
import type { ObjectRef } from '../../config/model.ts';
import { FileConfigSource, type UpdateResult } from '../../config/source.ts';
import type { FilterFactory } from '../pipeline/filter.ts';
import { filterCompilers } from '../pipeline/filter.ts';

export interface LoadOnceOptions {
  readonly paths: readonly string[];
  readonly gateway: ObjectRef;
  readonly trustDomain: string;
  readonly clusterDomain: string;
  readonly factories: readonly FilterFactory[];
  /** More compilers (validate's extra checks); their messages join the snapshot's. */
  readonly extraCompilers?: Readonly<Record<string, FilterCompiler>>;
}

export async function loadOnce(opts: LoadOnceOptions): Promise<UpdateResult> {
  const source = new FileConfigSource([...opts.paths], {
    gateway: opts.gateway,
    trustDomain: opts.trustDomain,
    clusterDomain: opts.clusterDomain,
    filterCompilers: { ...filterCompilers(opts.factories), ...opts.extraCompilers },
  });
  try {
    return await source.load();
  } finally {
    source.close();
  }
}
