import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'src/**/*.test.ts',
      'filters/**/*.test.ts',
      'config/**/*.test.ts',
      'test/**/*.test.ts',
      'bench/**/*.test.ts',
    ],
    // Real sockets and child processes: give each file room, never run two heavy suites per core.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    maxWorkers: 2,
    // Files of one worker share its module graph: importing the engine and filters once per worker
    // instead of once per file cut the suite from ~190 s to ~100 s on 2 cores. It holds because no
    // test depends on module state another file leaves (registries, counters, servers): checked with
    // `npx vitest run --sequence.shuffle`, which also reorders the files each worker gets.
    isolate: false,
  },
});
