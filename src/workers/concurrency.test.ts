import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cgroupCpuQuota, defaultConcurrency, parseConcurrency, quotaOfCpuMax } from './concurrency.ts';

describe('concurrency', () => {
  const dirs: string[] = [];
  afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
  const cgroup = async (files: Record<string, string>): Promise<string> => {
    const root = await mkdtemp(join(tmpdir(), 'cgroup-'));
    dirs.push(root);
    for (const [path, text] of Object.entries(files)) {
      await mkdir(join(root, path, '..'), { recursive: true });
      await writeFile(join(root, path), text);
    }
    return root;
  };

  it('reads the cgroup v2 quota, and none for "max"', async () => {
    expect(quotaOfCpuMax('150000 100000\n')).toBe(1.5);
    expect(quotaOfCpuMax('max 100000\n')).toBeUndefined();
    expect(cgroupCpuQuota(await cgroup({ 'cpu.max': '250000 100000\n' }))).toBe(2.5);
  });

  it('reads the cgroup v1 quota, and none for -1', async () => {
    const v1 = await cgroup({
      'cpu,cpuacct/cpu.cfs_quota_us': '50000\n',
      'cpu,cpuacct/cpu.cfs_period_us': '100000\n',
    });
    expect(cgroupCpuQuota(v1)).toBe(0.5);
    const none = await cgroup({ 'cpu/cpu.cfs_quota_us': '-1\n', 'cpu/cpu.cfs_period_us': '100000\n' });
    expect(cgroupCpuQuota(none)).toBeUndefined();
    expect(cgroupCpuQuota(await cgroup({}))).toBeUndefined();
  });

  it('defaults to the quota rounded up, at least 1, at most the CPUs', () => {
    expect(defaultConcurrency(1.5, 8)).toBe(2);
    expect(defaultConcurrency(0.1, 8)).toBe(1);
    expect(defaultConcurrency(16, 4)).toBe(4);
    expect(defaultConcurrency(undefined, 3)).toBe(3);
  });

  it('takes --concurrency N and rejects anything but 1-1024', () => {
    expect(parseConcurrency('3')).toBe(3);
    expect(parseConcurrency(undefined, () => 7)).toBe(7);
    expect(parseConcurrency('', () => 7)).toBe(7);
    for (const bad of ['0', '-1', '1.5', 'two', '1025'])
      expect(() => parseConcurrency(bad)).toThrow(/expected an integer 1-1024/);
  });
});
