// `npm run bench -- --baseline REF`: the waypoint of another commit beside this tree's, in the same
// run. REF's bin/, src/, config/ and filters/ come out of `git archive` into a temporary directory
// (no worktree: nothing is written into the repository), with this tree's node_modules linked in;
// its own src/cli/node-flags.ts gives its production V8 flags, so "before" runs as it shipped.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, type WaypointTree } from './lab.ts';

export interface Baseline extends WaypointTree {
  readonly ref: string;
  /** The commit REF names, short. */
  readonly commit: string;
  /** When REF's package-lock.json differs from this tree's (it runs on this tree's modules). */
  readonly lockNote?: string;
  remove(): Promise<void>;
}

const git = (args: readonly string[], input?: Buffer): Buffer =>
  execFileSync('git', args, {
    cwd: ROOT,
    timeout: 60_000,
    maxBuffer: 256 * 2 ** 20,
    ...(input ? { input } : {}),
  });

export async function prepareBaseline(ref: string): Promise<Baseline> {
  let commit: string;
  try {
    commit = git(['rev-parse', '--short', '--verify', `${ref}^{commit}`])
      .toString()
      .trim();
  } catch {
    throw new Error(`--baseline: ${JSON.stringify(ref)} is not a commit here`);
  }
  const root = await mkdtemp(join(tmpdir(), `waypoint-baseline-${commit}-`));
  try {
    const tar = git([
      'archive',
      '--format=tar',
      commit,
      '--',
      'bin',
      'src',
      'config',
      'filters',
      'package.json',
    ]);
    execFileSync('tar', ['-x', '-C', root], { input: tar, timeout: 60_000, maxBuffer: 256 * 2 ** 20 });
    await symlink(join(ROOT, 'node_modules'), join(root, 'node_modules'));
    const flags = (await import(join(root, 'src/cli/node-flags.ts'))) as {
      WAYPOINT_NODE_FLAGS?: readonly string[];
    };
    let lockNote: string | undefined;
    try {
      git(['diff', '--quiet', commit, '--', 'package-lock.json']);
    } catch {
      lockNote = `${commit}'s package-lock.json differs from this tree's; it ran on this tree's node_modules`;
    }
    return {
      ref,
      commit,
      root,
      nodeFlags: flags.WAYPOINT_NODE_FLAGS ?? [],
      ...(lockNote ? { lockNote } : {}),
      remove: () => rm(root, { recursive: true, force: true }),
    };
  } catch (err) {
    await rm(root, { recursive: true, force: true });
    throw err;
  }
}
