// One worker process of the primary: forked with the run's own arguments plus its listen
// addresses, its stdout and stderr relayed in whole lines, its IPC channel answered (the shared
// rate-limit buckets). It lives in its own process group, so a terminal's Ctrl-C reaches only the
// primary, which then drains every worker in order.
import { type ChildProcess, fork } from 'node:child_process';
import { Ipc, type IpcMessage } from './ipc.ts';
import { relayLines, tagJsonLines } from './line-relay.ts';
import type { BucketRequest, SharedBuckets } from './shared-buckets.ts';
import { type StartedNote, WORKER_ENV } from './worker-link.ts';

export interface SlotOptions {
  readonly index: number;
  /** The CLI entry (process.argv[1]) and the arguments after it, for this start. */
  readonly script: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly buckets: SharedBuckets;
}

export interface SlotExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Whether the worker had reported it listens. */
  readonly started: boolean;
}

export class WorkerSlot {
  readonly index: number;
  readonly child: ChildProcess;
  readonly #ipc: Ipc;
  started: StartedNote | undefined;
  readonly startedAt = Date.now();
  /** Resolves once the worker listens; rejects if it exits first. */
  readonly ready: Promise<StartedNote>;
  readonly exited: Promise<SlotExit>;

  constructor(o: SlotOptions) {
    this.index = o.index;
    this.child = fork(o.script, [...o.args], {
      env: { ...o.env, [WORKER_ENV]: String(o.index) },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      detached: true,
    });
    relayLines(this.child.stdout!, process.stdout);
    relayLines(this.child.stderr!, process.stderr, tagJsonLines(o.index));
    let onStarted: (n: StartedNote) => void = () => {};
    this.ready = new Promise((resolve) => (onStarted = resolve));
    this.#ipc = new Ipc((m) => this.#send(m), {
      started: (n: StartedNote) => {
        this.started = n;
        onStarted(n);
      },
      bucket: (r: BucketRequest) => o.buckets.consume(r),
    });
    this.child.on('message', (m) => this.#ipc.receive(m as IpcMessage));
    this.child.on('error', () => {});
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        this.#ipc.close(`worker ${this.index} exited`);
        resolve({ code, signal, started: this.started !== undefined });
      }),
    );
    // A worker that dies before it listens fails its start.
    this.ready = Promise.race([
      this.ready,
      this.exited.then((e) => {
        throw new Error(`worker ${this.index} exited ${e.code ?? e.signal} before listening`);
      }),
    ]);
    this.ready.catch(() => {});
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  call<T>(method: string, timeoutMs: number): Promise<T> {
    return this.#ipc.call<T>(method, null, timeoutMs);
  }

  signal(s: NodeJS.Signals): void {
    if (this.alive) this.child.kill(s);
  }

  #send(m: IpcMessage): void {
    if (!this.child.connected) throw new Error('closed');
    this.child.send(m);
  }
}
