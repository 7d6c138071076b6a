// gRPC C-core (Debian's python3-grpcio, run by /usr/bin/python3: the pyenv python3 first on PATH
// has no grpc) as a server or a client, through test/helpers/grpc_peer.py, for interop tests.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import type { HostPort } from '../../src/hbone/authority.ts';
import { formatAuthority } from '../../src/hbone/authority.ts';
import { ROOT } from './mesh.ts';

const PYTHON = '/usr/bin/python3';
const SCRIPT = join(ROOT, 'test/helpers/grpc_peer.py');

/** Why grpcio cannot run here (shown as the skipped test's reason), or undefined when it can. */
export function grpcioMissing(): string | undefined {
  try {
    execFileSync(PYTHON, ['-c', 'import grpc'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return `${PYTHON} cannot import grpc: install Debian's python3-grpcio (.ci/run does)`;
  }
}

export interface GrpcioResult {
  code: string;
  details: string;
  reply: string | null;
  initial: Record<string, string>;
  trailing: Record<string, string>;
}

/** Starts the grpcio server on ip (port 0 = any); resolves with its port and a stop function. */
export async function startGrpcioServer(
  ip: string,
  port = 0,
): Promise<{ port: number; stop: () => Promise<void> }> {
  const child = spawn(PYTHON, [SCRIPT, 'server', formatAuthority(ip, port)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const bound = await firstLine(child, /^listening (\d+)$/m);
  return {
    port: Number(bound[1]),
    stop: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Sends every request at once on one grpcio channel to target; resolves with each call's outcome. */
export async function grpcioCalls(
  target: HostPort,
  requests: readonly string[],
  timeoutSeconds = 10,
): Promise<GrpcioResult[]> {
  const child = spawn(
    PYTHON,
    [
      SCRIPT,
      'client',
      formatAuthority(target.ip, target.port),
      JSON.stringify({ requests, timeout: timeoutSeconds }),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const [line] = await firstLine(child, /^\[.*\]$/m);
  return JSON.parse(line) as GrpcioResult[];
}

/** The first stdout match of pattern; rejects with stderr when the process exits first. */
function firstLine(child: ChildProcess, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = pattern.exec(out);
      if (m) resolve(m);
    });
    child.once('error', reject);
    child.once('close', (code) =>
      reject(new Error(`grpc_peer.py exited ${code} before ${pattern}:\n${out}${err}`)),
    );
  });
}
