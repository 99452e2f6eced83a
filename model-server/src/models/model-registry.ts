/**
 * The loaded model directory. Every load builds a complete new `Generation` (one ONNX session
 * per version, created once and reused by every request) and swaps it in with one assignment,
 * so a request sees either the old directory or the new one, never a mix. A request holds its
 * generation (`acquire`/`release`) and a replaced generation frees its sessions only once the
 * last request holding it has finished: a reload never fails a request in flight.
 */
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { silentLogger, type Logger } from '@bunryu/platform/log';
import * as ort from 'onnxruntime-node';
import { BatchRunner } from './batch-runner.ts';
import { signatureProblem } from './signature.ts';
import { METADATA_FILE, MODEL_FILE, ModelMetadata, STATUS_FILE, VersionMetadata, VersionStatus, isName } from './model-metadata.ts';

export interface ReadyVersion {
  name: string;
  status: 'ready';
  metadata: VersionMetadata;
  /** The registration record, for versions registered over HTTP (or gated by training). */
  record?: VersionStatus;
  session: ort.InferenceSession;
  /** Scores instances; stacks concurrent requests into one run unless model.json says `batch: false`. */
  runner: BatchRunner;
}
/** A version that does not serve: it failed to load, failed a gate, or was retired. */
export interface FailedVersion {
  name: string;
  status: 'failed' | 'rejected' | 'retired';
  /** Why it cannot answer (shown by GET /v1/models and in logs). */
  error: string;
  metadata?: VersionMetadata;
  record?: VersionStatus;
}
export type LoadedVersion = ReadyVersion | FailedVersion;

export interface LoadedModel {
  name: string;
  /** Set when the model as a whole cannot answer (its model.json is invalid). */
  error?: string;
  description: string;
  defaultVersion?: string;
  fallbackVersion?: string;
  knobs: ModelMetadata['knobs'];
  versions: Map<string, LoadedVersion>;
}

export class Generation {
  refs = 0;
  retired = false;
  constructor(
    readonly id: number,
    readonly models: ReadonlyMap<string, LoadedModel>,
    readonly loadedAt: Date,
  ) {}
}

export interface ReloadSummary {
  generation: number;
  durationMs: number;
  models: { name: string; error?: string; versions: { version: string; status: LoadedVersion['status']; error?: string }[] }[];
}

export interface ModelRegistryOptions {
  log?: Logger;
  /** Debounce of file-change reloads: a training run writes several files. */
  watchDebounceMs?: number;
}

/**
 * Two cores run the HTTP server and ONNX Runtime: one thread per session, no spinning pool.
 * ONNX Runtime's own stderr lines are silenced: every failure reaches us as an exception, which
 * we log as JSON with the model and version, and answer with the fallback.
 */
const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = {
  logSeverityLevel: 4,
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
};


export class ModelRegistry {
  private current: Generation;
  private nextId = 1;
  private reloading: Promise<ReloadSummary> | undefined;
  private queued: Promise<ReloadSummary> | undefined;
  private watcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private closed = false;
  private log: Logger;
  private lastSummary: ReloadSummary | undefined;
  private readonly listeners: ((s: ReloadSummary | Error) => void)[] = [];
  /** Sessions released so far (replaced generations drained to zero requests). */
  releasedSessions = 0;

  constructor(
    readonly dir: string,
    private readonly opts: ModelRegistryOptions = {},
  ) {
    this.log = opts.log ?? silentLogger;
    this.current = new Generation(0, new Map(), new Date());
  }

  /** The generation a request should use; pair every call with `release`. */
  acquire(): Generation {
    const g = this.current;
    g.refs++;
    return g;
  }

  release(g: Generation): void {
    g.refs--;
    if (g.retired && g.refs === 0) void this.dispose(g);
  }

  get generation(): Generation {
    return this.current;
  }

  /** The app's logger, once there is one; the load that happened before it is logged again. */
  useLogger(log: Logger): void {
    this.log = log;
    if (this.lastSummary) this.logSummary(this.lastSummary);
  }

  onReload(listener: (s: ReloadSummary | Error) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Loads the directory again and swaps it in. Calls during a reload share one follow-up reload,
   * which starts after the running one, so the last call always sees the files as they are now.
   */
  reload(): Promise<ReloadSummary> {
    if (this.closed) return Promise.reject(new Error('the model registry is closed'));
    if (!this.reloading) {
      this.reloading = this.loadAndSwap().finally(() => {
        this.reloading = undefined;
      });
      return this.reloading;
    }
    if (!this.queued) {
      this.queued = this.reloading
        .catch(() => undefined)
        .then(() => {
          this.queued = undefined;
          return this.reload();
        });
    }
    return this.queued;
  }

  /** Reloads when a file under the directory changes (debounced). */
  async watch(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const debounceMs = this.opts.watchDebounceMs ?? 250;
    this.watcher = watch(this.dir, { recursive: true }, (_event, file) => {
      if (file && /\.tmp$/.test(String(file))) return; // an atomic write in progress
      clearTimeout(this.debounce);
      this.debounce = setTimeout(() => {
        this.reload().catch(() => {}); // reported through onReload and the log
      }, debounceMs);
    });
    this.watcher.on('error', (err) => this.log.error({ err }, 'model directory watcher failed; POST /v1/models/reload still works'));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watcher?.close();
    clearTimeout(this.debounce);
    await this.queued?.catch(() => {});
    await this.reloading?.catch(() => {});
    this.retire(this.current);
  }

  describe() {
    const g = this.current;
    return {
      generation: g.id,
      loadedAt: g.loadedAt.toISOString(),
      models: [...g.models.values()].map((m) => ({
        name: m.name,
        description: m.description,
        ...(m.error ? { error: m.error } : {}),
        defaultVersion: m.defaultVersion ?? null,
        fallbackVersion: m.fallbackVersion ?? null,
        knobs: m.knobs,
        versions: [...m.versions.values()].map((v) => ({
          version: v.name,
          status: v.status,
          ...(v.status !== 'ready' ? { error: v.error } : {}),
          description: v.metadata?.description ?? '',
          features: v.metadata?.features ?? [],
          output: v.metadata?.output ?? null,
          metrics: v.metadata?.metrics ?? {},
          gates: v.record?.gates ?? [],
        })),
      })),
    };
  }

  private async loadAndSwap(): Promise<ReloadSummary> {
    const started = performance.now();
    try {
      const models = await this.loadDirectory();
      const next = new Generation(this.nextId++, models, new Date());
      const previous = this.current;
      if (this.closed) {
        this.retire(next);
        throw new Error('the model registry is closed');
      }
      this.current = next;
      this.retire(previous);
      const summary = summarise(next, performance.now() - started);
      this.lastSummary = summary;
      this.logSummary(summary);
      for (const l of this.listeners) l(summary);
      return summary;
    } catch (err) {
      this.log.error({ err }, 'model reload failed; the previous models keep serving');
      for (const l of this.listeners) l(err as Error);
      throw err;
    }
  }

  private logSummary(summary: ReloadSummary): void {
    for (const m of summary.models) {
      if (m.error) this.log.error({ model: m.name, error: m.error }, 'model cannot answer');
      for (const v of m.versions) {
        if (v.status === 'failed') this.log.warn({ model: m.name, version: v.version, error: v.error }, 'model version failed to load; requests for it use the fallback version');
      }
    }
    const ready = summary.models.map((m) => `${m.name}:${m.versions.filter((v) => v.status === 'ready').map((v) => v.version).join('|')}`);
    this.log.info({ generation: summary.generation, models: ready, durationMs: summary.durationMs }, 'models loaded');
  }

  private retire(g: Generation): void {
    if (g.retired) return;
    g.retired = true;
    if (g.refs === 0) void this.dispose(g);
  }

  private async dispose(g: Generation): Promise<void> {
    for (const m of g.models.values()) {
      for (const v of m.versions.values()) {
        if (v.status !== 'ready') continue;
        try {
          await v.session.release();
          this.releasedSessions++;
        } catch (err) {
          this.log.warn({ err, model: m.name, version: v.name }, 'releasing a replaced ONNX session failed');
        }
      }
    }
  }

  private async loadDirectory(): Promise<Map<string, LoadedModel>> {
    const models = new Map<string, LoadedModel>();
    for (const name of await subdirectories(this.dir)) models.set(name, await this.loadModel(name));
    return models;
  }

  private async loadModel(name: string): Promise<LoadedModel> {
    const dir = join(this.dir, name);
    const versionNames = (await subdirectories(dir)).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    const versions = new Map<string, LoadedVersion>();
    await Promise.all(versionNames.map(async (v) => versions.set(v, await loadVersion(join(dir, v), v))));
    // Keep versions in directory order whatever order their loads finished in.
    const ordered = new Map(versionNames.map((v) => [v, versions.get(v)!]));

    const model: LoadedModel = { name, description: '', knobs: {}, versions: ordered };
    let meta: ModelMetadata;
    try {
      meta = ModelMetadata.parse(await readJson(join(dir, METADATA_FILE), {}));
    } catch (err) {
      model.error = `${name}/${METADATA_FILE}: ${message(err)}`;
      return model;
    }
    model.description = meta.description;
    model.knobs = meta.knobs;
    model.defaultVersion = meta.defaultVersion ?? versionNames.at(-1);
    model.fallbackVersion = meta.fallbackVersion;
    const named: [string, string | undefined][] = [
      ['defaultVersion', meta.defaultVersion],
      ['fallbackVersion', meta.fallbackVersion],
      ['knobs.blendWith.default', meta.knobs.blendWith?.default],
    ];
    for (const [field, version] of named) {
      if (version !== undefined && !ordered.has(version)) model.error = `${name}/${METADATA_FILE}: ${field} names version "${version}", which has no folder`;
    }
    if (versionNames.length === 0) model.error = `${name} has no version folders`;
    return model;
  }
}

async function loadVersion(dir: string, name: string): Promise<LoadedVersion> {
  let metadata: VersionMetadata;
  let record: VersionStatus | undefined;
  try {
    metadata = VersionMetadata.parse(await readJson(join(dir, METADATA_FILE)));
    const status = await readJson(join(dir, STATUS_FILE), null);
    record = status === null ? undefined : VersionStatus.parse(status);
  } catch (err) {
    return { name, status: 'failed', error: `${METADATA_FILE} or ${STATUS_FILE}: ${message(err)}` };
  }
  // A rejected or retired version never serves: requests for it get the fallback version.
  if (record?.status === 'rejected') {
    const failed = record.gates.filter((g) => !g.passed).map((g) => `${g.name}: ${g.reason ?? 'failed'}`);
    return { name, status: 'rejected', error: `rejected by its gates (${failed.join('; ')})`, metadata, record };
  }
  if (record?.status === 'retired') return { name, status: 'retired', error: `retired${record.retiredAt ? ` at ${record.retiredAt}` : ''}`, metadata, record };
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(await readFile(join(dir, MODEL_FILE)), SESSION_OPTIONS);
  } catch (err) {
    return { name, status: 'failed', error: `${MODEL_FILE}: ${message(err)}`, metadata };
  }
  try {
    const mismatch = signatureProblem(session, metadata);
    if (mismatch) throw new Error(mismatch);
    // One run at load: a graph that cannot run fails here, not on a client's request.
    const probe = new ort.Tensor('float32', new Float32Array(metadata.features.length), [1, metadata.features.length]);
    const out = (await session.run({ [metadata.input]: probe }))[metadata.output];
    if (!out || out.data.length !== 1) throw new Error(`output ${metadata.output} gave ${out?.data.length ?? 0} values for 1 instance`);
  } catch (err) {
    await session.release().catch(() => {});
    return { name, status: 'failed', error: `${MODEL_FILE}: ${message(err)}`, metadata };
  }
  const runner = new BatchRunner(session, metadata.input, metadata.output, metadata.features.length, metadata.batch);
  return { name, status: 'ready', metadata, session, runner, ...(record ? { record } : {}) };
}

async function subdirectories(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory() && isName(e.name)).map((e) => e.name);
}

async function readJson(path: string, missing?: unknown): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (missing !== undefined && (err as NodeJS.ErrnoException).code === 'ENOENT') return missing;
    throw new Error((err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : message(err));
  }
  return JSON.parse(text);
}

function message(err: unknown): string {
  const e = err as { issues?: { path: PropertyKey[]; message: string }[]; message?: string };
  if (Array.isArray(e.issues)) return e.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`).join('; ');
  return (e.message ?? String(err)).split('\n')[0]!;
}

function summarise(g: Generation, durationMs: number): ReloadSummary {
  return {
    generation: g.id,
    durationMs: Math.round(durationMs * 10) / 10,
    models: [...g.models.values()].map((m) => ({
      name: m.name,
      ...(m.error ? { error: m.error } : {}),
      versions: [...m.versions.values()].map((v) => ({ version: v.name, status: v.status, ...(v.status !== 'ready' ? { error: v.error } : {}) })),
    })),
  };
}
