import { describe, expect, it } from 'vitest';
import { Ipc, type IpcMessage } from './ipc.ts';

/** Two ends wired to each other, as the primary and a worker are (messages delivered asynchronously). */
function pair(a: Record<string, (arg: never) => unknown>, b: Record<string, (arg: never) => unknown>) {
  let open = true;
  const deliver = (to: () => Ipc) => (m: IpcMessage) => {
    if (!open) throw new Error('closed');
    const copy = JSON.parse(JSON.stringify(m)) as IpcMessage;
    queueMicrotask(() => to().receive(copy));
  };
  const left: Ipc = new Ipc(
    deliver(() => right),
    a,
  );
  const right: Ipc = new Ipc(
    deliver(() => left),
    b,
  );
  return { left, right, cut: () => (open = false) };
}

describe('Ipc', () => {
  it('answers calls, sync or async, and passes notes', async () => {
    const notes: unknown[] = [];
    const { left } = pair(
      {},
      {
        add: (x: { a: number; b: number }) => x.a + x.b,
        later: async () => 'ok',
        hi: (n: never) => notes.push(n),
      },
    );
    expect(await left.call('add', { a: 2, b: 3 })).toBe(5);
    expect(await left.call('later', null)).toBe('ok');
    left.note('hi', { from: 'left' });
    await new Promise((r) => setImmediate(r));
    expect(notes).toEqual([{ from: 'left' }]);
  });

  it('rejects with the other side error, an unknown method, a closed channel', async () => {
    const { left, cut } = pair(
      {},
      {
        fail: () => {
          throw new Error('nope');
        },
      },
    );
    await expect(left.call('fail', null)).rejects.toThrow('nope');
    await expect(left.call('missing', null)).rejects.toThrow('no method missing');
    cut();
    await expect(left.call('fail', null)).rejects.toThrow('fail: the channel is closed');
  });

  it('fails a call with no reply on close, and ignores replies nobody waits for', async () => {
    const silent = new Ipc(() => {}, {});
    const waiting = silent.call('x', null, 60_000);
    silent.receive({ t: 'reply', id: 999, value: 1 });
    silent.close('gone');
    await expect(waiting).rejects.toThrow('gone');
  });
});
