#!/usr/bin/env -S node --max-semi-space-size=2 --single-threaded-gc
// Entry shim (the shebang's V8 flags: src/cli/node-flags.ts). The sources are TypeScript that Node 24 runs directly (type stripping), so there is
// no build step. Older Node cannot, and says so here instead of failing on syntax.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(
    `node-waypoint needs Node.js 24 or newer (this is ${process.version}).\n` +
      'Run it through npm (npm start, npx node-waypoint) so the pinned Node from node_modules is used.\n',
  );
  process.exit(1);
}
// A warm compile cache lets Node skip type stripping (amaro's wasm: ~25 MB RSS) and compiling
// (bench/RESULTS.md). NODE_COMPILE_CACHE=DIR chooses where (default: os.tmpdir()/node-compile-cache),
// NODE_DISABLE_COMPILE_CACHE=1 turns it off; a cache it cannot write is skipped, never fatal.
(await import('node:module')).enableCompileCache?.();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
