// `run --concurrency N` (N > 1): this process is the primary. It serves the replica's metrics
// (15020, every worker's summed) and readiness (15021, ready when every worker is), forks N worker
// processes that each run the whole waypoint (HBONE on the same port through SO_REUSEPORT, their
// own configuration loading, upstream pools), restarts a worker that dies with back-off, keeps the
// local rate-limit buckets they share, and on SIGTERM drains them all and exits 0 when all have.
// The admin port is the primary's, forwarded to worker 0; every worker's own admin, metrics and
// readiness ports are private (ephemeral, on the admin address).
import net from 'node:net';
import { formatAuthority } from '../hbone/authority.ts';
import type { Logger } from '../observe/logger.ts';
import { bindPrimaryPorts, type PrimaryPorts } from './primary-ports.ts';
import { SharedBuckets } from './shared-buckets.ts';
import { type StartedNote, WORKER_RESTART_ENV } from './worker-link.ts';
import { WorkerSlot } from './worker-slot.ts';

export interface Listen {
  readonly host: string;
  readonly port: number;
}

export interface PrimaryOptions {
  readonly concurrency: number;
  /** `run`'s own arguments, given to every worker (then its listen addresses, which win). */
  readonly argv: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly listen: {
    readonly hbone: Listen;
    readonly admin: Listen;
    readonly ready: Listen;
    readonly metrics: Listen;
  };
  readonly drainDeadlineMs: number;
  readonly log: Logger;
  /** The CLI entry the workers run (default: this process's). */
  readonly script?: string;
}

/** Restart back-off: 250 ms doubling to 30 s; a worker that lived a minute starts the count again. */
export function restartDelayMs(failures: number): number {
  return Math.min(30_000, 250 * 2 ** failures);
}

/**
 * Picks a free port for `--hbone HOST:0` by listening on it with SO_REUSEPORT until the first
 * worker has joined it (then that worker holds it for the others). This socket never accepts: a
 * connection the kernel gave it would be reset when it closes, so it closes as soon as it can, and
 * nobody is told the port before the primary's "waypoint listening" line.
 */
async function reservePort(host: string): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: 0, reusePort: true }, () => resolve());
  });
  return { server, port: (server.address() as net.AddressInfo).port };
}

export class Primary {
  readonly #o: PrimaryOptions;
  readonly #slots: WorkerSlot[] = [];
  readonly #failures: number[];
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #buckets = new SharedBuckets();
  #ports: PrimaryPorts | undefined;
  /** Forking the workers, once start() began (stop() waits for it). */
  #launch: Promise<unknown> | undefined;
  /** Binding the primary's ports, once every worker listens (stop() closes them after). */
  #bound: Promise<unknown> | undefined;
  /** Where the workers bind HBONE (port 0 resolved), for every later start. */
  #hbone: Listen;
  #stopping = false;

  constructor(o: PrimaryOptions) {
    this.#o = o;
    this.#hbone = o.listen.hbone;
    this.#failures = Array.from({ length: o.concurrency }, () => 0);
  }

  get slots(): readonly WorkerSlot[] {
    return this.#slots;
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  /** Worker N's private admin address while it runs (the admin port forwards there; 0 unless asked). */
  target(index = 0): { ip: string; port: number } | undefined {
    const w = this.#slots[index];
    return w?.started && w.alive ? w.started.admin : undefined;
  }

  /**
   * Starts every worker at once (HBONE's port 0 resolved here first), then binds the replica's
   * ports: like one process, a worker that cannot start (an unreadable certificate) fails the run
   * before any port is bound. A stop() meanwhile (SIGTERM while starting) ends it quietly.
   */
  async start(): Promise<void> {
    const launch = this.#launchAll();
    this.#launch = launch;
    const reserved = await launch;
    const release = () => reserved?.server.listening && reserved.server.close();
    Promise.any(this.#slots.map((s) => s.ready)).then(release, release);
    try {
      await Promise.all(this.#slots.map((s) => s.ready));
      if (this.#stopping) return;
      this.#bound = bindPrimaryPorts(this, this.#o.listen).then((p) => (this.#ports = p));
      await this.#bound;
    } catch (err) {
      if (this.#stopping) return;
      await this.stop('SIGKILL');
      throw err;
    } finally {
      release();
    }
    if (this.#stopping) return;
    for (const s of this.#slots) this.#watch(s);
    const first = this.#slots[0]!.started!;
    this.#o.log.info('waypoint listening', {
      gateway: first.gateway,
      identity: first.identity,
      workers: this.#o.concurrency,
      pids: this.#slots.map((s) => s.child.pid),
      hbone: formatAuthority(this.#hbone.host, this.#hbone.port),
      ...this.#ports!.addresses,
    });
  }

  /** HBONE's port 0 reserved, and every worker forked (none once stopping). */
  async #launchAll(): Promise<{ server: net.Server } | undefined> {
    const reserved = this.#hbone.port === 0 ? await reservePort(this.#hbone.host) : undefined;
    if (reserved) this.#hbone = { host: this.#hbone.host, port: reserved.port };
    if (!this.#stopping) for (let i = 0; i < this.#o.concurrency; i++) this.#spawn(i);
    return reserved;
  }

  /**
   * The coordinated drain: readiness fails, every worker drains; true when every worker exited 0
   * (or, stopped before it listened, by this signal: it had nothing to drain).
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<boolean> {
    this.#stopping = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    // A launch that failed forked nothing.
    const launched = await this.#launch?.then(
      () => true,
      () => false,
    );
    if (launched === false) return false;
    for (const s of this.#slots) s.signal(signal);
    const cap = setTimeout(() => {
      for (const s of this.#slots) s.signal('SIGKILL');
    }, this.#o.drainDeadlineMs + 10_000);
    const exits = await Promise.all(this.#slots.map((s) => s.exited));
    clearTimeout(cap);
    await this.#bound?.catch(() => {});
    await this.#ports?.close();
    return exits.every((e) => e.code === 0 || (!e.started && e.signal === signal));
  }

  #spawn(index: number, restart = false): WorkerSlot {
    const { host } = this.#o.listen.admin;
    const args = [
      'run',
      ...this.#o.argv,
      '--hbone',
      formatAuthority(this.#hbone.host, this.#hbone.port),
      '--admin',
      formatAuthority(host, 0),
      '--metrics',
      formatAuthority(host, 0),
      '--ready',
      formatAuthority(host, 0),
    ];
    const slot = new WorkerSlot({
      index,
      script: this.#o.script ?? process.argv[1]!,
      args,
      env: restart ? { ...this.#o.env, [WORKER_RESTART_ENV]: '1' } : this.#o.env,
      buckets: this.#buckets,
    });
    this.#slots[index] = slot;
    return slot;
  }

  /** Restarts the worker when it exits on its own (not in a drain), with back-off. */
  #watch(slot: WorkerSlot): void {
    void slot.exited.then((exit) => {
      if (this.#stopping || this.#slots[slot.index] !== slot) return;
      const i = slot.index;
      if (exit.started && Date.now() - slot.startedAt > 60_000) this.#failures[i] = 0;
      const delay = restartDelayMs(this.#failures[i]!);
      this.#failures[i]!++;
      this.#ports?.restarts.inc({ worker: String(i) });
      this.#o.log.error('worker exited unexpectedly; restarting', {
        worker: i,
        pid: slot.child.pid,
        code: exit.code,
        signal: exit.signal,
        restart_in_ms: delay,
      });
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        if (this.#stopping) return;
        const next = this.#spawn(i, true);
        this.#watch(next);
        next.ready.then(
          (n: StartedNote) => this.#o.log.info('worker restarted', { worker: i, pid: n.pid }),
          () => {},
        );
      }, delay);
      this.#timers.add(timer);
    });
  }
}
