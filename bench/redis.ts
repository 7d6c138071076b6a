// The bench's own redis-server for --chain full-redis: 127.0.90.20 on a free port, no persistence,
// pinned to core 0 with the rest of the bench's helpers. Killed (by its pid) when the bench exits.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { freePort, ping } from '../test/helpers/redis.ts';
import type { Pinning } from './lab.ts';

export const REDIS_IP = '127.0.90.20';

export interface BenchRedis {
  readonly pid: number;
  readonly url: string;
  /** INFO stats total_commands_processed (undefined when Redis does not answer). */
  commandsProcessed(): Promise<number | undefined>;
  stop(): Promise<void>;
}

/** total_commands_processed from INFO stats over a fresh connection. */
function commandsProcessed(host: string, port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    let got = '';
    const done = (n: number | undefined): void => {
      sock.destroy();
      resolve(n);
    };
    sock.setTimeout(1_000, () => done(undefined));
    sock.on('error', () => done(undefined));
    sock.on('connect', () => sock.write('INFO stats\r\n'));
    sock.on('data', (d: Buffer) => {
      got += d.toString();
      const m = /total_commands_processed:(\d+)/.exec(got);
      if (m) done(Number(m[1]));
    });
  });
}

export async function startRedis(pin: Pinning): Promise<BenchRedis> {
  let bin: string;
  try {
    bin = execFileSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8', timeout: 5_000 }).trim();
  } catch {
    throw new Error(
      '--chain full-redis needs redis-server on PATH (Debian: apt-get install -y redis-server)',
    );
  }
  const port = await freePort(REDIS_IP);
  const args = ['--port', String(port), '--bind', REDIS_IP, '--save', '', '--appendonly', 'no'];
  const child: ChildProcess = pin.restCore
    ? spawn('taskset', ['-c', pin.restCore, bin, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (child.pid === undefined) throw new Error('could not start redis-server');
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-2_000)));
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', kill);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 5_000;
  while (!(await ping(REDIS_IP, port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      kill();
      throw new Error(`redis-server did not answer PING on ${REDIS_IP}:${port}: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    pid: child.pid,
    url: `redis://${REDIS_IP}:${port}`,
    commandsProcessed: () => commandsProcessed(REDIS_IP, port),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(kill, 3_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
