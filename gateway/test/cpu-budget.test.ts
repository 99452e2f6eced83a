import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { cgroupCpuQuota, cpuBudget } from '../src/cluster/cpu-budget.ts';

/** A file system of these files only. */
const files = (entries: Record<string, string>) => (path: string) => entries[path] ?? null;

describe('cpuBudget: the cores a gateway may use', () => {
  it('reads a cgroup v2 limit, rounding a fractional one up', () => {
    const read = files({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': '150000 100000\n' });
    expect(cgroupCpuQuota(read)).toBe(1.5);
    expect(cpuBudget(read, 8)).toBe(2);
  });

  it('takes the tightest limit from the process cgroup up to the root (v2, also under unified/)', () => {
    const read = files({
      '/proc/self/cgroup': '0::/kubepods/pod-1/app\n',
      '/sys/fs/cgroup/kubepods/pod-1/app/cpu.max': 'max 100000',
      '/sys/fs/cgroup/kubepods/pod-1/cpu.max': '300000 100000',
      '/sys/fs/cgroup/kubepods/cpu.max': '800000 100000',
    });
    expect(cpuBudget(read, 16)).toBe(3);
    const hybrid = files({ '/proc/self/cgroup': '0::/svc\n', '/sys/fs/cgroup/unified/svc/cpu.max': '100000 100000' });
    expect(cpuBudget(hybrid, 16)).toBe(1);
  });

  it('reads a cgroup v1 quota where the cpu controller is mounted', () => {
    const read = files({
      '/proc/self/cgroup': '12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n',
      '/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us': '50000\n',
      '/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us': '100000\n',
    });
    expect(cgroupCpuQuota(read)).toBe(0.5);
    expect(cpuBudget(read, 4)).toBe(1);
  });

  it('uses every CPU it may run on when there is no limit, or no cgroups to read', () => {
    const unlimitedV1 = files({ '/proc/self/cgroup': '1:cpu:/\n', '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' });
    expect(cgroupCpuQuota(unlimitedV1)).toBeNull();
    expect(cpuBudget(unlimitedV1, 6)).toBe(6);
    const unlimitedV2 = files({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': 'max 100000' });
    expect(cpuBudget(unlimitedV2, 6)).toBe(6);
    expect(cpuBudget(files({}), 3)).toBe(3);
    // A limit above the CPUs it may run on does not add any.
    expect(cpuBudget(files({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': '800000 100000' }), 2)).toBe(2);
  });

  it('on this machine, is between one and the CPUs Node sees', () => {
    const budget = cpuBudget();
    expect(budget).toBeGreaterThanOrEqual(1);
    expect(budget).toBeLessThanOrEqual(availableParallelism());
  });
});
