// Flag values shared by the subcommands: ADDR:PORT listen addresses, NS/NAME references, and the
// environment-variable fallbacks the container uses (WAYPOINT_<FLAG>).

import { isIP } from 'node:net';
import type { HostPort } from '../hbone/authority.ts';

export class UsageError extends Error {
  override name = 'UsageError';
}

/** Runs a value parser from elsewhere (log level, access-log mode) so its complaint is a usage error naming the flag. */
export function checked<T>(flag: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`${flag}: ${(err as Error).message}`);
  }
}

/** ADDR:PORT to listen on; port 0 lets the OS choose (tests). */
export function parseListen(flag: string, value: string): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  const ip = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || !ip || isIP(ip) === 0 || port > 65535) {
    throw new UsageError(`${flag}: expected IP:PORT (e.g. 127.0.0.1:15008), got ${JSON.stringify(value)}`);
  }
  return { ip, port };
}

export function parseRef(flag: string, value: string): { namespace: string; name: string } {
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/.exec(value);
  if (!m) throw new UsageError(`${flag}: expected NAMESPACE/NAME, got ${JSON.stringify(value)}`);
  return { namespace: m[1]!, name: m[3]! };
}

export function parsePort(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new UsageError(`${flag}: expected a port 1-65535, got ${JSON.stringify(value)}`);
  return n;
}

export function parseSeconds(flag: string, value: string): number {
  const n = Number(value.replace(/s$/, ''));
  if (!Number.isFinite(n) || n < 0)
    throw new UsageError(`${flag}: expected seconds (e.g. 20 or 20s), got ${JSON.stringify(value)}`);
  return n * 1000;
}

export function parseCount(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new UsageError(`${flag}: expected a whole number, got ${JSON.stringify(value)}`);
  return n;
}

/** `--flag` value, else WAYPOINT_FLAG from the environment, else the default. */
export function fromEnv(
  name: string,
  value: string | undefined,
  env: NodeJS.ProcessEnv,
  fallback?: string,
): string | undefined {
  if (value !== undefined) return value;
  const key = `WAYPOINT_${name.replace(/-/g, '_').toUpperCase()}`;
  return env[key] ?? fallback;
}

/** `redis://[user:password@]host:port[/db]` (or rediss://). */
export function parseRedisUrl(flag: string, value: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {}
  if (!url || (url.protocol !== 'redis:' && url.protocol !== 'rediss:') || !url.hostname)
    throw new UsageError(`${flag}: expected redis://HOST:PORT, got ${JSON.stringify(value)}`);
  return value;
}

export function parseFailureMode(flag: string, value: string): 'open' | 'closed' {
  if (value === 'open' || value === 'closed') return value;
  throw new UsageError(`${flag}: expected open or closed, got ${JSON.stringify(value)}`);
}
