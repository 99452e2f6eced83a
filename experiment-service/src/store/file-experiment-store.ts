import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { createError, type BunryuError, type EventDeclaration, type Experiment, type Holdout, type Route } from '@bunryu/core';
import { writeFileDurably } from '@bunryu/platform/durable-files';
import {
  DEFAULT_AUDIT_MAX_ENTRIES,
  StaleWriteError,
  auditEntry,
  frozen,
  sortedExport,
  type AuditEntry,
  type Change,
  type ExperimentStore,
  type StoreExport,
  type StoreState,
  type UserMetric,
} from './experiment-store.ts';

interface PersistedState {
  format: 1;
  /** Absent in states written before epochs: opening draws one. */
  epoch?: string;
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
 * A directory whose `state.json` is gone while `audit.jsonl` still records changes has lost its
 * state: the store opens refusing reads and writes (and /readyz says so) until an import, rather
 * than starting over empty under a log of changes it no longer has.
 *
 * The audit log keeps what the Redis store keeps: the newest `auditMaxEntries` of the whole log
 * and of each subject's. Older lines leave the file when it is rewritten, once they are a tenth
 * of what it keeps (a rewrite per change would cost the whole log every time).
 *
 * One process owns a directory: writes are serialized in-process, not across processes.
 */
export class FileExperimentStore implements ExperimentStore {
  private readonly statePath: string;
  private readonly auditPath: string;
  private readonly listeners = new Set<(version: number) => void>();
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private lost: BunryuError | undefined;
  /** Lines in audit.jsonl: the entries kept, and those retention dropped since the last rewrite. */
  private auditLines: number;

  private constructor(
    private readonly dir: string,
    private state: PersistedState,
    private readonly entries: AuditEntry[],
    private auditBytes: number,
    private readonly auditMaxEntries: number,
  ) {
    this.auditLines = entries.length;
    this.statePath = join(dir, 'state.json');
    this.auditPath = join(dir, 'audit.jsonl');
  }

  /**
   * Opens (creating if needed) the store in `dir`, normally `<BUNRYU_DATA_DIR>/experiment-service`.
   * `auditMaxEntries`: the audit log's retention (0: everything).
   */
  static async open(dir: string, options: { auditMaxEntries?: number } = {}): Promise<FileExperimentStore> {
    const auditMaxEntries = options.auditMaxEntries ?? DEFAULT_AUDIT_MAX_ENTRIES;
    await mkdir(dir, { recursive: true });
    const persisted = await readJson<PersistedState>(join(dir, 'state.json'));
    const state = frozen(persisted ?? { ...EMPTY, epoch: randomUUID() });
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
      // Entries newer than the state: a crash between appending them and replacing the state.
      if (entry.configVersion > state.version && persisted) dropped = true;
      else entries.push(entry);
    }
    if (!persisted && (entries.length > 0 || dropped)) {
      const store = new FileExperimentStore(dir, state, entries, Buffer.byteLength(text), auditMaxEntries);
      store.lost = createError(
        'BUNRYU_NOT_READY',
        `${join(dir, 'state.json')} is gone but ${auditPath} records ${entries.length} changes: the state was lost. ` +
          'Reads and writes are refused: restore state.json, or an export with POST /v1/import.',
        { dir, auditEntries: entries.length },
      );
      return store;
    }
    const kept = retained(entries, auditMaxEntries);
    const store = new FileExperimentStore(dir, state.epoch ? state : frozen({ ...state, epoch: randomUUID() }), kept, Buffer.byteLength(text), auditMaxEntries);
    if (dropped || kept.length < entries.length) await store.rewriteAudit();
    // The epoch is on disk before anyone sees it: a restart must not draw another.
    if (!persisted?.epoch) await writeFileDurably(store.statePath, JSON.stringify(store.state));
    return store;
  }

  async load(): Promise<StoreState> {
    this.assertUsable();
    const s = this.state;
    return {
      version: s.version,
      epoch: s.epoch!,
      experiments: Object.values(s.experiments),
      routes: Object.values(s.routes),
      metrics: Object.values(s.metrics),
      holdout: s.holdout,
      events: Object.values(s.events ?? {}),
    };
  }

  async getExperiment(key: string): Promise<Experiment | undefined> {
    this.assertUsable();
    return this.state.experiments[key];
  }

  async version(): Promise<number> {
    this.assertUsable();
    return this.state.version;
  }

  commit(change: Change): Promise<{ version: number }> {
    try {
      this.assertUsable();
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const run = this.queue.then(() => this.apply(change));
    this.queue = run.catch(() => undefined);
    return run;
  }

  async audit(query: { subject?: string; limit?: number } = {}): Promise<AuditEntry[]> {
    this.assertOpen();
    let all = query.subject === undefined ? this.entries : this.entries.filter((e) => e.subject === query.subject);
    // Kept for its subject's history is not kept for the whole log's, as with Redis's lists.
    if (this.auditMaxEntries > 0) all = all.slice(Math.max(0, all.length - this.auditMaxEntries));
    return query.limit === undefined ? [...all] : all.slice(Math.max(0, all.length - query.limit));
  }

  async onChange(listener: (version: number) => void): Promise<() => void> {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async ping(): Promise<void> {
    this.assertUsable();
    await stat(this.dir);
  }

  async exportAll(): Promise<StoreExport> {
    this.assertUsable();
    const s = this.state;
    return sortedExport({
      epoch: s.epoch!,
      version: s.version,
      experiments: Object.values(s.experiments),
      routes: Object.values(s.routes),
      metrics: Object.values(s.metrics),
      holdout: s.holdout,
      events: Object.values(s.events ?? {}),
      audit: [...this.entries],
    });
  }

  importAll(data: StoreExport): Promise<{ version: number; epoch: string }> {
    try {
      this.assertOpen();
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const run = this.queue.then(() => this.applyImport(data));
    this.queue = run.catch(() => undefined);
    return run;
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
    for (const [key, expected] of Object.entries(change.expectRoutes ?? {})) {
      const route = current.routes[key];
      if ((route === undefined ? null : JSON.stringify(route)) !== expected) throw new StaleWriteError(`route:${key}`, 0, -1);
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
    this.auditLines += added.length;
    this.state = next;
    this.entries.push(...added);
    if (this.auditMaxEntries > 0 && this.entries.length > this.auditMaxEntries) {
      const kept = retained(this.entries, this.auditMaxEntries);
      this.entries.splice(0, this.entries.length, ...kept);
      // The state has moved: a rewrite that fails now leaves old lines, which the next open drops.
      if (this.auditLines - kept.length >= Math.max(1, Math.floor(this.auditMaxEntries / 10))) await this.rewriteAudit().catch(() => undefined);
    }
    for (const listener of this.listeners) {
      queueMicrotask(() => listener(version));
    }
    return { version };
  }

  private async applyImport(data: StoreExport): Promise<{ version: number; epoch: string }> {
    const s = this.state;
    const empty = s.version === 0 && Object.keys(s.experiments).length + Object.keys(s.routes).length + Object.keys(s.metrics).length + Object.keys(s.events ?? {}).length === 0 && s.holdout === null;
    if (!this.lost && !empty) throw createError('BUNRYU_ALREADY_EXISTS', `the store in ${this.dir} is not empty: import only into an empty store`);
    const next: PersistedState = {
      format: 1,
      epoch: randomUUID(),
      version: data.version,
      experiments: Object.fromEntries(data.experiments.map((e) => [e.key, copy(e)])),
      routes: Object.fromEntries(data.routes.map((r) => [r.key, copy(r)])),
      metrics: Object.fromEntries(data.metrics.map((m) => [m.key, copy(m)])),
      holdout: data.holdout === null ? null : copy(data.holdout),
      events: Object.fromEntries(data.events.map((d) => [d.type, copy(d)])),
    };
    const entries = data.audit.map((a) => copy(auditEntry(a, a.configVersion)));
    // The log of the lost state is kept beside, not overwritten: it is all that is left of it.
    if (this.lost) await rename(this.auditPath, `${this.auditPath}.lost-${Date.now()}`).catch(() => undefined);
    const text = entries.map((e) => JSON.stringify(e) + '\n').join('');
    await writeFileDurably(this.auditPath, text);
    await writeFileDurably(this.statePath, JSON.stringify(next));
    this.auditBytes = Buffer.byteLength(text);
    this.auditLines = entries.length;
    this.state = frozen(next);
    this.entries.splice(0, this.entries.length, ...entries);
    this.lost = undefined;
    for (const listener of this.listeners) queueMicrotask(() => listener(-1));
    return { version: next.version, epoch: next.epoch! };
  }

  private async rewriteAudit(): Promise<void> {
    const text = this.entries.map((e) => JSON.stringify(e) + '\n').join('');
    await writeFileDurably(this.auditPath, text);
    this.auditBytes = Buffer.byteLength(text);
    this.auditLines = this.entries.length;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('the experiment store is closed');
  }

  private assertUsable(): void {
    this.assertOpen();
    if (this.lost) throw this.lost;
  }
}

/** The entries among the newest `max` of the whole log or of their subject's, oldest first (0: all). */
export function retained(entries: readonly AuditEntry[], max: number): AuditEntry[] {
  if (max === 0 || entries.length <= max) return [...entries];
  const perSubject = new Map<string, number>();
  const keep: boolean[] = new Array<boolean>(entries.length);
  for (let i = entries.length - 1; i >= 0; i--) {
    const subject = entries[i]!.subject;
    const n = (perSubject.get(subject) ?? 0) + 1;
    perSubject.set(subject, n);
    keep[i] = i >= entries.length - max || n <= max;
  }
  return entries.filter((_, i) => keep[i]);
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
