/** Figures of other processes from /proc (Linux), for benches that measure servers they started. */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

let clockTicks: number | undefined;

/** Fields of /proc/<pid>/stat after the command name (the 3rd field of the line is [0]); null when unreadable. */
export function statFields(pid: number): string[] | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** The process and its children (a cluster's primary and workers). */
export function processTree(pid: number): number[] {
  const children = readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((name) => Number(statFields(Number(name))?.[1]) === pid)
    .map(Number);
  return [pid, ...children];
}

/** CPU seconds (user + system, every thread) the processes used so far, together; null when one is unreadable. */
export function cpuSeconds(pids: readonly number[]): number | null {
  clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  let ticks = 0;
  for (const pid of pids) {
    const fields = statFields(pid);
    if (!fields) return null;
    ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
  }
  return ticks / clockTicks;
}

/** Resident set (VmRSS) of a process, in MB. */
export function rssMb(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
}

/**
 * Pins a process and all its threads to `cpus` (a `taskset -c` list) on Linux with taskset, so a
 * bench can keep its load generator and helpers off the cores of the server it measures. False
 * when it could not.
 */
export function pin(pid: number, cpus: string): boolean {
  if (process.platform !== 'linux') return false;
  try {
    execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
