// A real redis-server for tests: started on a free port of 127.0.170.1, no persistence, stopped (or
// killed and restarted on the same port, for outage tests) by the test. Missing redis-server is a
// failure with instructions, never a silent skip (CI installs it: .ci/run).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { connect, createServer } from 'node:net';

export const REDIS_HOST = '127.0.170.1';

function redisBinary(): string {
  try {
    return execFileSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(
      'redis-server is not on PATH: the global rate-limit tests need a real Redis. Install it (Debian: apt-get install -y redis-server).',
    );
  }
}

export async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** One PING over a fresh connection; true on +PONG. */
export function ping(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    let got = '';
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.includes('\r\n')) done(got.startsWith('+PONG'));
    });
  });
}

export class RedisServer {
  readonly host: string;
  readonly port: number;
  #child: ChildProcess | undefined;
  #log = '';

  private constructor(host: string, port: number) {
    this.host = host;
    this.port = port;
  }

  get url(): string {
    return `redis://${this.host}:${this.port}`;
  }

  static async start(host = REDIS_HOST): Promise<RedisServer> {
    const server = new RedisServer(host, await freePort(host));
    await server.#spawn();
    return server;
  }

  async #spawn(): Promise<void> {
    const bin = redisBinary();
    const child = spawn(
      bin,
      ['--port', String(this.port), '--bind', this.host, '--save', '', '--appendonly', 'no'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.on('data', (d: Buffer) => (this.#log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.#log += d.toString()));
    this.#child = child;
    const deadline = Date.now() + 5_000;
    for (;;) {
      if (await ping(this.host, this.port)) return;
      if (child.exitCode !== null || Date.now() > deadline)
        throw new Error(`redis-server on ${this.host}:${this.port} did not answer PING:\n${this.#log}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Kills the server (SIGKILL: an outage, not a clean shutdown) and waits until it is gone. */
  async kill(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  /**
   * Stops the server without closing anything (SIGSTOP): connections stay up and commands go
   * unanswered until thaw(), as with a Redis stuck on a slow disk. Unlike CLIENT PAUSE, it ends
   * when the test says, not after a guessed duration.
   */
  freeze(): void {
    this.#child?.kill('SIGSTOP');
  }

  /** Lets a frozen server go on (SIGCONT): it answers what it was sent meanwhile. */
  thaw(): void {
    this.#child?.kill('SIGCONT');
  }

  /** A new, empty redis-server on the same address. */
  async restart(): Promise<void> {
    await this.kill();
    await this.#spawn();
  }

  stop(): Promise<void> {
    return this.kill();
  }
}
