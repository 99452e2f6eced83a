import { mkdir, open, readFile, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import type { EventDeclaration, Experiment, Holdout, Route } from '@bunryu/core';
import { writeFileDurably } from '@bunryu/platform/durable-files';
import {
  StaleWriteError,
  auditEntry,
  frozen,
  type AuditEntry,
  type Change,
  type ExperimentStore,
  type StoreState,
  type UserMetric,
} from './experiment-store.ts';

interface PersistedState {
  format: 1;
  version: number;
  experiments: Record<string, Experiment>;
  routes: Record<string, Route>;
  metrics: Record<string, UserMetric>;
  holdout: Holdout | null;
  /** Absent in files written before the event catalogue. */
  events?: Record<string, EventDeclaration>;
}

const EMPTY: PersistedState = { format: 1, version: 0, experiments: {}, routes: {}, metrics: {}, holdout: null };

/**
 * The embedded default: the whole state in `state.json` (replaced atomically by write + fsync +
 * rename) and the audit log in `audit.jsonl` (appended before the state is replaced, each entry
 * tagged with its config version). A crash between the two leaves audit entries newer than the
 * state; opening drops them, so a change is either fully there or not at all.
 *
 * One process owns a directory: writes are serialized in-process, not across processes.
 */
export class FileExperimentStore implements ExperimentStore {
  private readonly statePath: string;
  private readonly auditPath: string;
  private readonly listeners = new Set<(version: number) => void>();
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly dir: string,
    private state: PersistedState,
    private readonly entries: AuditEntry[],
    private auditBytes: number,
  ) {
    this.statePath = join(dir, 'state.json');
    this.auditPath = join(dir, 'audit.jsonl');
  }

  /** Opens (creating if needed) the store in `dir`, normally `<BUNRYU_DATA_DIR>/experiment-service`. */
  static async open(dir: string): Promise<FileExperimentStore> {
    await mkdir(dir, { recursive: true });
    const state = frozen((await readJson<PersistedState>(join(dir, 'state.json'))) ?? { ...EMPTY });
    if (state.format !== 1) throw new Error(`${join(dir, 'state.json')}: unknown format ${String(state.format)}`);
    const auditPath = join(dir, 'audit.jsonl');
    const text = (await readText(auditPath)) ?? '';
    const entries: AuditEntry[] = [];
    let dropped = false;
    for (const line of text.split('\n')) {
      if (!line) continue;
      let entry: AuditEntry;
      try {
        entry = JSON.parse(line) as AuditEntry;
      } catch {
        dropped = true; // a line torn by a crash mid-append
        continue;
      }
      if (entry.configVersion > state.version) dropped = true;
      else entries.push(entry);
    }
    const store = new FileExperimentStore(dir, state, entries, Buffer.byteLength(text));
    if (dropped) await store.rewriteAudit();
    return store;
  }

  async load(): Promise<StoreState> {
    this.assertOpen();
    const s = this.state;
    return {
      version: s.version,
      experiments: Object.values(s.experiments),
      routes: Object.values(s.routes),
      metrics: Object.values(s.metrics),
      holdout: s.holdout,
      events: Object.values(s.events ?? {}),
    };
  }

  async getExperiment(key: string): Promise<Experiment | undefined> {
    this.assertOpen();
    return this.state.experiments[key];
  }

  async version(): Promise<number> {
    this.assertOpen();
    return this.state.version;
  }

  commit(change: Change): Promise<{ version: number }> {
    this.assertOpen();
    const run = this.queue.then(() => this.apply(change));
    this.queue = run.catch(() => undefined);
    return run;
  }

  async audit(query: { subject?: string; limit?: number } = {}): Promise<AuditEntry[]> {
    this.assertOpen();
    const all = query.subject === undefined ? this.entries : this.entries.filter((e) => e.subject === query.subject);
    return query.limit === undefined ? [...all] : all.slice(Math.max(0, all.length - query.limit));
  }

  async onChange(listener: (version: number) => void): Promise<() => void> {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async ping(): Promise<void> {
    this.assertOpen();
    await stat(this.dir);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queue;
    this.listeners.clear();
  }

  private async apply(change: Change): Promise<{ version: number }> {
    const current = this.state;
    for (const [key, expected] of Object.entries(change.expect ?? {})) {
      const actual = current.experiments[key]?.version ?? 0;
      if (actual !== expected) throw new StaleWriteError(key, expected, actual);
    }
    const version = current.version + 1;
    // Copies through JSON so the store never shares objects with callers and holds exactly
    // what it persists (as the Redis adapter does).
    const next: PersistedState = {
      ...current,
      version,
      experiments: { ...current.experiments },
      routes: { ...current.routes },
      metrics: { ...current.metrics },
    };
    if (change.events?.length) {
      next.events = { ...current.events };
      for (const e of change.events) next.events[e.type] = copy(e);
    }
    for (const e of change.experiments ?? []) next.experiments[e.key] = copy(e);
    for (const r of change.routes ?? []) next.routes[r.key] = copy(r);
    for (const m of change.metrics ?? []) next.metrics[m.key] = copy(m);
    if (change.holdout) next.holdout = copy(change.holdout);
    const added = change.audit.map((a) => copy(auditEntry(a, version)));

    const lines = added.map((e) => JSON.stringify(e) + '\n').join('');
    if (lines) await appendDurably(this.auditPath, lines);
    try {
      await writeFileDurably(this.statePath, JSON.stringify(next));
    } catch (err) {
      // The state did not move: take back the audit lines so the next change can use this version.
      if (lines) await truncate(this.auditPath, this.auditBytes).catch(() => undefined);
      throw err;
    }
    this.auditBytes += Buffer.byteLength(lines);
    this.state = next;
    this.entries.push(...added);
    for (const listener of this.listeners) {
      queueMicrotask(() => listener(version));
    }
    return { version };
  }

  private async rewriteAudit(): Promise<void> {
    const text = this.entries.map((e) => JSON.stringify(e) + '\n').join('');
    await writeFileDurably(this.auditPath, text);
    this.auditBytes = Buffer.byteLength(text);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('the experiment store is closed');
  }
}

function copy<T>(value: T): T {
  return frozen(JSON.parse(JSON.stringify(value)) as T);
}

async function appendDurably(path: string, data: string): Promise<void> {
  const fh = await open(path, 'a');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function readJson<T>(path: string): Promise<T | undefined> {
  const text = await readText(path);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    // Never start empty over a state we cannot read: that would silently discard every experiment.
    throw new Error(`${path} is not valid JSON (${(err as Error).message}); restore it or move it away`);
  }
}
