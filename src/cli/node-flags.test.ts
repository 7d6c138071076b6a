// The V8 flags are written in four places a test-free change would let drift apart.
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { WAYPOINT_NODE_FLAGS } from './node-flags.ts';

const root = new URL('../..', import.meta.url).pathname;
const read = (f: string): string => readFileSync(`${root}${f}`, 'utf8');
const flags = WAYPOINT_NODE_FLAGS.join(' ');

it('runs the waypoint with the same V8 flags everywhere it starts', () => {
  expect(read('bin/node-waypoint.js').split('\n')[0]).toBe(`#!/usr/bin/env -S node ${flags}`);
  expect((JSON.parse(read('package.json')) as { scripts: { start: string } }).scripts.start).toContain(
    `node ${flags} `,
  );
  expect(read('Dockerfile')).toContain(
    `ENTRYPOINT ["node", ${WAYPOINT_NODE_FLAGS.map((f) => `"${f}"`).join(', ')}, "/app/bin/node-waypoint.js"]`,
  );
  // The compile cache warmed at build time is only used under the same V8 flags (a hash of them names its directory).
  expect(read('Dockerfile')).toContain(`RUN node ${flags} --input-type=module -e`);
});
