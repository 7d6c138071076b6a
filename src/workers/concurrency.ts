// How many worker processes `run` starts: --concurrency N, else the CPUs the container may use, as
// Envoy's and Istio's concurrency default: the cgroup's CPU quota (v2 cpu.max, v1
// cpu.cfs_quota_us / cpu.cfs_period_us) rounded up, at least 1, at most the CPUs Node may use.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** The CPU quota of a cgroup v2 `cpu.max` text ("max 100000" or "150000 100000"), or undefined. */
export function quotaOfCpuMax(text: string): number | undefined {
  const [quota, period] = text.trim().split(/\s+/);
  return quotaOf(quota, period);
}

/** The CPU quota of cgroup v1's cfs_quota_us (-1: none) and cfs_period_us, or undefined. */
export function quotaOf(quota: string | undefined, period: string | undefined): number | undefined {
  const q = Number(quota);
  const p = Number(period);
  if (!Number.isFinite(q) || !Number.isFinite(p) || q <= 0 || p <= 0) return undefined;
  return q / p;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The cgroup's CPU quota in CPUs (fractional), or undefined when there is none. */
export function cgroupCpuQuota(root = '/sys/fs/cgroup'): number | undefined {
  const v2 = read(`${root}/cpu.max`);
  if (v2 !== undefined) return quotaOfCpuMax(v2);
  for (const dir of [`${root}/cpu`, `${root}/cpu,cpuacct`]) {
    const q = read(`${dir}/cpu.cfs_quota_us`);
    if (q !== undefined) return quotaOf(q, read(`${dir}/cpu.cfs_period_us`));
  }
  return undefined;
}

/** The default worker count: the quota rounded up, within 1 … the CPUs Node may use. */
export function defaultConcurrency(quota = cgroupCpuQuota(), cpus = availableParallelism()): number {
  const n = quota === undefined ? cpus : Math.ceil(quota);
  return Math.max(1, Math.min(n, cpus));
}

/** `--concurrency N` (an integer 1-1024); undefined or empty: the default. */
export function parseConcurrency(text: string | undefined, fallback = defaultConcurrency): number {
  if (text === undefined || text === '') return fallback();
  if (!/^[0-9]+$/.test(text) || Number(text) < 1 || Number(text) > 1024)
    throw new Error(`expected an integer 1-1024, got ${JSON.stringify(text)}`);
  return Number(text);
}
