// Suites run in parallel and beside a running `npm start`: a loopback address bound by two test files
// (or by a test and the demo) makes one of them fail with EADDRINUSE, or talk to the other's server.
// This lists every literal 127.x.y.z of every file that opens sockets and fails on one shared by two.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ADDRESS = /\b127\.\d{1,3}\.\d{1,3}\.\d{1,3}\b/g;
/** A file that listens or connects (or starts a waypoint that does); the rest use addresses as data. */
const OPENS_SOCKETS =
  /\.listen\(|createServer|TestMesh|spawnCli|spawnRun|startWaypoint|FakeIstioCa|FakeKubeApi|startRedis|\bconnect\(/;
/** Shared on purpose: every user binds port 0 there, so they cannot collide. */
const SHARED: Record<string, string> = {
  '127.0.0.1': 'free ports only',
  '127.0.0.2': "TestMesh's default waypoint address (free ports)",
  '127.0.0.50': "the client address TestMesh's HBONE client puts in Forwarded (data)",
  '127.0.170.1': 'test/helpers/redis.ts (a free port per redis-server)',
};
/** `npm start`'s addresses (config/demo, src/cli/demo.ts): no test may bind them. */
const DEMO = /^127\.10\./;

function* files(dir: string): Generator<string> {
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) yield* files(path);
    else if (e.name.endsWith('.ts')) yield path;
  }
}

/** address → the test files (and helpers, bench) that use it, for files that open sockets. */
function addressesByFile(): Map<string, string[]> {
  const users = new Map<string, string[]>();
  const candidates = [
    ...files('test'),
    ...files('bench'),
    ...['src', 'filters', 'config'].flatMap((d) => [...files(d)].filter((f) => f.endsWith('.test.ts'))),
  ];
  for (const file of candidates) {
    const text = readFileSync(join(ROOT, file), 'utf8');
    if (!OPENS_SOCKETS.test(text) || file === relative(ROOT, fileURLToPath(import.meta.url))) continue;
    for (const address of new Set(text.match(ADDRESS) ?? [])) {
      users.set(address, [...(users.get(address) ?? []), file]);
    }
  }
  return users;
}

it('no two test files use the same loopback address', () => {
  const shared = [...addressesByFile()]
    .filter(([address, users]) => users.length > 1 && !(address in SHARED))
    .map(([address, users]) => `${address}: ${users.join(' ')}`)
    .sort();
  expect(shared).toEqual([]);
});

it("no test file uses npm start's addresses (127.10.x.x)", () => {
  const demo = [...addressesByFile()]
    .filter(([address]) => DEMO.test(address))
    .map(([address, users]) => `${address}: ${users.join(' ')}`);
  expect(demo).toEqual([]);
});

it('finds the addresses it is about (a check that found none would pass for nothing)', () => {
  const users = addressesByFile();
  expect(users.size).toBeGreaterThan(100);
  expect(users.get('127.0.170.1')?.length).toBeGreaterThan(1);
});
