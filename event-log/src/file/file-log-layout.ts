import { randomUUID } from 'node:crypto';
import { link, mkdir, readFile, readdir, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { syncDir } from '@bunryu/platform/durable-files';

/**
 * Where the embedded log keeps things, under `<dir>/<topic>/`:
 *
 *   meta.json                        {"format": 1, "partitions": 4}, written once
 *   producer.lock                    pid of the one process appending
 *   <partition>/<base offset>.log    segments; the base is the offset of the segment's first record
 *   offsets/<group>.json             committed offsets of a consumer group
 *   offsets/<group>.lock             pid of the one process consuming for that group
 */
export class FileLogLayout {
  readonly root: string;

  constructor(
    dir: string,
    topic: string,
    readonly partitions: number,
  ) {
    checkName('topic', topic);
    if (!Number.isInteger(partitions) || partitions < 1 || partitions > 1024) {
      throw new RangeError(`partitions must be an integer from 1 to 1024, got ${partitions}`);
    }
    this.root = join(dir, topic);
  }

  partitionDir(partition: number): string {
    return join(this.root, String(partition));
  }

  segmentPath(partition: number, base: number): string {
    return join(this.partitionDir(partition), `${String(base).padStart(20, '0')}.log`);
  }

  get producerLock(): string {
    return join(this.root, 'producer.lock');
  }

  get offsetsDir(): string {
    return join(this.root, 'offsets');
  }

  offsetsPath(group: string): string {
    return join(this.offsetsDir, `${checkName('group', group)}.json`);
  }

  groupLock(group: string): string {
    return join(this.offsetsDir, `${checkName('group', group)}.lock`);
  }

  /** Base offsets of a partition's segments, oldest first. */
  async segments(partition: number): Promise<number[]> {
    let names: string[];
    try {
      names = await readdir(this.partitionDir(partition));
    } catch (error) {
      if (isNotFound(error)) return [];
      throw error;
    }
    return names
      .filter((name) => /^\d{20}\.log$/.test(name))
      .map((name) => Number(name.slice(0, 20)))
      .sort((a, b) => a - b);
  }

  /**
   * Creates the folders and pins the partition count on first use. Producer and consumer run in
   * different processes and must hash keys to the same partitions, so a mismatch is refused.
   */
  async ensure(): Promise<void> {
    await mkdir(this.offsetsDir, { recursive: true });
    await Promise.all(Array.from({ length: this.partitions }, (_, p) => mkdir(this.partitionDir(p), { recursive: true })));
    const metaPath = join(this.root, 'meta.json');
    const meta = JSON.stringify({ format: 1, partitions: this.partitions });
    await createExclusive(metaPath, meta).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    });
    const existing = JSON.parse(await readFile(metaPath, 'utf8')) as { format?: number; partitions?: number };
    if (existing.format !== 1 || existing.partitions !== this.partitions) {
      throw new Error(`event log ${this.root} has ${existing.partitions} partitions (format ${existing.format}); this process asked for ${this.partitions}`);
    }
  }
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

function checkName(kind: string, name: string): string {
  if (!NAME.test(name)) throw new Error(`event log ${kind} "${name}" must match ${NAME} (it names a file)`);
  return name;
}

export function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/** Creates `path` with `data` all at once, or fails with EEXIST: never a half-written file. */
async function createExclusive(path: string, data: string): Promise<void> {
  const tmp = `${path}.${randomUUID()}.tmp`;
  await writeFile(tmp, data);
  try {
    await link(tmp, path);
  } finally {
    await unlink(tmp).catch(() => {});
  }
  await syncDir(dirname(path));
}


const heldLocks = new Set<string>();

/**
 * A pid lock file: taken with an atomic link, stolen only when its process is gone (a crash
 * leaves it behind). Returns the release function.
 */
export async function acquireLock(path: string, what: string): Promise<() => Promise<void>> {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await createExclusive(path, String(process.pid));
      heldLocks.add(path);
      return async () => {
        heldLocks.delete(path);
        const holder = await readFile(path, 'utf8').catch(() => '');
        if (holder === String(process.pid)) await unlink(path).catch(() => {});
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if (isNotFound(error)) continue;
      throw error;
    }
    const holder = Number.parseInt(text, 10);
    // Our own pid without our own hold is a previous incarnation (containers restart as pid 1).
    const held = holder === process.pid ? heldLocks.has(path) : isAlive(holder);
    if (held) throw new Error(`${what} is in use by process ${holder} (lock ${path})`);
    await unlink(path).catch((error: unknown) => {
      if (!isNotFound(error)) throw error;
    });
  }
  throw new Error(`could not take the lock ${path}`);
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
