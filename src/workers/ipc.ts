// Calls and notes between the primary and a worker over Node's IPC channel (JSON messages). A call
// carries an id and gets one reply; a note gets none. Both sides use the same class.
export type IpcMessage =
  | { readonly t: 'call'; readonly id: number; readonly method: string; readonly arg: unknown }
  | { readonly t: 'reply'; readonly id: number; readonly value?: unknown; readonly error?: string }
  | { readonly t: 'note'; readonly method: string; readonly arg: unknown };

export type Handler = (arg: never) => unknown;

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export class Ipc {
  readonly #send: (m: IpcMessage) => void;
  readonly #handlers: Record<string, Handler>;
  readonly #pending = new Map<number, Pending>();
  #nextId = 0;

  /** `send` throws when the channel is closed. */
  constructor(send: (m: IpcMessage) => void, handlers: Record<string, Handler>) {
    this.#send = send;
    this.#handlers = handlers;
  }

  /** Calls `method` on the other side; rejects after timeoutMs or when the channel closes. */
  call<T>(method: string, arg: unknown, timeoutMs = 5_000): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () => this.#settle(id, { error: `${method}: no reply in ${timeoutMs} ms` }),
        timeoutMs,
      );
      timer.unref();
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      try {
        this.#send({ t: 'call', id, method, arg });
      } catch {
        this.#settle(id, { error: `${method}: the channel is closed` });
      }
    });
  }

  note(method: string, arg: unknown): void {
    try {
      this.#send({ t: 'note', method, arg });
    } catch {}
  }

  /** Feeds one message from the channel (anything not ours is ignored). */
  receive(m: IpcMessage): void {
    if (typeof m !== 'object' || m === null) return;
    if (m.t === 'reply') this.#settle(m.id, m);
    else if (m.t === 'call') void this.#answer(m.id, m.method, m.arg);
    else if (m.t === 'note') this.#handlers[m.method]?.(m.arg as never);
  }

  /** Fails every call still waiting (the other side is gone). */
  close(why: string): void {
    for (const id of [...this.#pending.keys()]) this.#settle(id, { error: why });
  }

  async #answer(id: number, method: string, arg: unknown): Promise<void> {
    const handler = this.#handlers[method];
    let reply: IpcMessage;
    try {
      if (!handler) throw new Error(`no method ${method}`);
      reply = { t: 'reply', id, value: await handler(arg as never) };
    } catch (err) {
      reply = { t: 'reply', id, error: (err as Error).message };
    }
    try {
      this.#send(reply);
    } catch {}
  }

  #settle(id: number, m: { value?: unknown; error?: string }): void {
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    clearTimeout(p.timer);
    if (m.error !== undefined) p.reject(new Error(m.error));
    else p.resolve(m.value);
  }
}
