import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { relayLines, tagJsonLines } from './line-relay.ts';

function sink() {
  const writes: string[] = [];
  const out = new Writable({
    write(chunk: Buffer, _e, cb) {
      writes.push(chunk.toString());
      cb();
    },
  });
  return { out, writes };
}

describe('relayLines', () => {
  it('writes only whole lines: two workers interleave by line, never inside one', async () => {
    const { out, writes } = sink();
    const a = new PassThrough();
    const b = new PassThrough();
    relayLines(a, out);
    relayLines(b, out);
    a.write('a1\na2-part');
    b.write('b1-part');
    b.write('-rest\n');
    a.write('-rest\n');
    a.end('a3');
    b.end();
    await new Promise((r) => setImmediate(r));
    expect(writes).toEqual(['a1\n', 'b1-part-rest\n', 'a2-part-rest\n', 'a3\n']);
    for (const w of writes) expect(w.endsWith('\n')).toBe(true);
  });

  it('pauses the worker stream while the output is full', async () => {
    let release: () => void = () => {};
    const out = new Writable({
      highWaterMark: 1,
      write(_c, _e, cb) {
        release = cb;
      },
    });
    const from = new PassThrough();
    relayLines(from, out);
    from.write('line\n');
    await new Promise((r) => setImmediate(r));
    expect(from.isPaused()).toBe(true);
    release();
    await new Promise((r) => setImmediate(r));
    expect(from.isPaused()).toBe(false);
  });

  it('names the worker in each of its JSON log lines, and leaves other lines alone', async () => {
    const { out, writes } = sink();
    const from = new PassThrough();
    relayLines(from, out, tagJsonLines(1));
    from.write('{"time":"t","msg":"a"}\nplain\n{"msg":"b"}');
    from.end('\n');
    await new Promise((r) => setImmediate(r));
    expect(writes.join('')).toBe('{"worker":1,"time":"t","msg":"a"}\nplain\n{"worker":1,"msg":"b"}\n');
  });
});
