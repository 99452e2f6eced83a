import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** Reads a file as text; null when it cannot (absent, not permitted). */
export type ReadText = (path: string) => string | null;

const readText: ReadText = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
};

/**
 * The cores this process can use: the CPUs it may run on, bounded by a cgroup CPU quota (a
 * container's CPU limit), which Node's availableParallelism() does not read. Without the bound a
 * gateway limited to 2 CPUs on a 64-core node would start 64 workers, each with its own
 * runtime and config, to share 2 CPUs. The quota of every cgroup from the process's
 * own up to the root counts (a limit set on a parent applies to its children); a fractional
 * quota rounds up, so 1.5 CPUs make 2 workers.
 */
export function cpuBudget(read: ReadText = readText, cpus = availableParallelism()): number {
  const quota = cgroupCpuQuota(read);
  return quota === null ? cpus : Math.max(1, Math.min(cpus, Math.ceil(quota)));
}

/** The tightest CPU quota on this process's cgroups, in CPUs; null when there is none (or no cgroups). */
export function cgroupCpuQuota(read: ReadText = readText, root = '/sys/fs/cgroup'): number | null {
  const membership = read('/proc/self/cgroup');
  if (membership === null) return null;
  let tightest: number | null = null;
  const take = (q: number | null) => {
    if (q !== null && (tightest === null || q < tightest)) tightest = q;
  };
  for (const line of membership.split('\n')) {
    const [id, controllers, path] = splitLine(line);
    if (path === undefined) continue;
    if (id === '0' && controllers === '') {
      // cgroup v2: cpu.max is "max 100000" or "<quota> <period>", in the unified hierarchy.
      for (const dir of ancestors(path)) take(v2Quota(read(`${root}${dir}/cpu.max`) ?? read(`${root}/unified${dir}/cpu.max`)));
    } else if (controllers!.split(',').includes('cpu')) {
      // cgroup v1: cpu.cfs_quota_us (-1: none) over cpu.cfs_period_us, where the cpu controller is mounted.
      for (const dir of ancestors(path)) {
        for (const mount of [`${root}/cpu`, `${root}/cpu,cpuacct`, `${root}/${controllers}`]) {
          const quota = read(`${mount}${dir}/cpu.cfs_quota_us`);
          if (quota === null) continue;
          take(ratio(quota, read(`${mount}${dir}/cpu.cfs_period_us`)));
          break;
        }
      }
    }
  }
  return tightest;
}

function splitLine(line: string): [string, string, string] | [] {
  const first = line.indexOf(':');
  const second = line.indexOf(':', first + 1);
  if (first < 0 || second < 0) return [];
  return [line.slice(0, first), line.slice(first + 1, second), line.slice(second + 1).trim()];
}

/** "/a/b" → "/a/b", "/a", "" (the root). */
function ancestors(path: string): string[] {
  const dirs: string[] = [];
  let dir = path === '/' ? '' : path.replace(/\/+$/, '');
  while (true) {
    dirs.push(dir);
    if (dir === '') return dirs;
    dir = dir.slice(0, dir.lastIndexOf('/'));
  }
}

function v2Quota(text: string | null): number | null {
  if (text === null) return null;
  const [quota, period] = text.trim().split(/\s+/);
  return quota === undefined || quota === 'max' ? null : ratio(quota, period ?? '100000');
}

function ratio(quota: string, period: string | null | undefined): number | null {
  const q = Number(quota.trim());
  const p = Number((period ?? '').trim());
  return Number.isFinite(q) && q > 0 && Number.isFinite(p) && p > 0 ? q / p : null;
}
