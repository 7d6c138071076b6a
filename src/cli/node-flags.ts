// V8 flags the waypoint process runs with. Measured with `npm run bench -- --workload istio`
// (bench/RESULTS.md): V8's default young generation let per-request garbage pile up into 25-35 ms
// scavenges and ~300 MB RSS at 1000 req/s; a 2 MB semi-space keeps scavenges short and RSS near
// 165 MB. A waypoint gets about one core, where V8's parallel GC helpers only compete with the
// event loop, so GC runs on the main thread. The same list is in bin/node-waypoint.js's shebang,
// package.json's start script and the Dockerfile; a test checks they agree.
export const WAYPOINT_NODE_FLAGS = ['--max-semi-space-size=2', '--single-threaded-gc'] as const;
