/**
 * Registering and retiring model versions (SPEC §12). A version is a folder of the model
 * directory, so every replica watching the directory picks it up; this module only ever adds a
 * complete folder (written beside the model under a dot-name no loader reads, then renamed in
 * one step) or replaces one file atomically. A request never sees half a version.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createError } from '@bunryu/core';
import { EVALUATION_FILE, EvaluationFile, METADATA_FILE, MODEL_FILE, ModelMetadata, STATUS_FILE, VersionMetadata, VersionStatus, isName } from '../models/model-metadata.ts';
import type { Generation, LoadedVersion, ModelRegistry } from '../models/model-registry.ts';
import { DEFAULT_GATE_POLICY, fileProblem, runGates, type Baseline, type EvaluationSet, type Gate, type GatePolicy } from './gates.ts';

/** What GET /v1/models/:name/versions/:version answers. */
export interface VersionView {
  model: string;
  version: string;
  status: LoadedVersion['status'];
  error?: string;
  gates: VersionStatus['gates'];
  description: string;
  features: string[];
  metrics: Record<string, number>;
  registeredAt?: string;
  registeredBy?: string;
  retiredAt?: string;
  retiredBy?: string;
}

export interface RegisterRequest {
  name: string;
  version: string;
  onnx: Uint8Array;
  /** The model.json text as uploaded. */
  meta: string;
  actor: string;
}

const field = (path: string, message: string) => createError('BUNRYU_VALIDATION', `${path}: ${message}`, { fields: [{ path, message }] });

export class VersionLifecycle {
  constructor(
    private readonly registry: ModelRegistry,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** The version as the loaded directory has it; 404 when there is none. */
  view(name: string, version: string): VersionView {
    const model = this.registry.generation.models.get(name);
    const v = model?.versions.get(version);
    if (!v) throw createError('BUNRYU_NOT_FOUND', `no version ${version} of model ${name}`);
    const r = v.record;
    return {
      model: name,
      version,
      status: v.status,
      ...(v.status !== 'ready' ? { error: v.error } : {}),
      gates: r?.gates ?? [],
      description: v.metadata?.description ?? '',
      features: v.metadata?.features ?? [],
      metrics: v.metadata?.metrics ?? {},
      ...(r?.registeredAt ? { registeredAt: r.registeredAt } : {}),
      ...(r?.registeredBy ? { registeredBy: r.registeredBy } : {}),
      ...(r?.retiredAt ? { retiredAt: r.retiredAt } : {}),
      ...(r?.retiredBy ? { retiredBy: r.retiredBy } : {}),
    };
  }

  /**
   * Gates the version and stores it: `ready`, or `rejected` with the failed gates' reasons. A
   * file that is not a usable model (bad model.json, not ONNX, inputs that do not match) is a
   * 400 naming the part, and nothing is written; an existing version is a 409.
   */
  async register(req: RegisterRequest): Promise<VersionView> {
    if (!isName(req.name)) throw field('name', 'must match ^[a-z0-9][a-z0-9._-]{0,63}$');
    if (!isName(req.version)) throw field('version', 'must match ^[a-z0-9][a-z0-9._-]{0,63}$');
    let meta: VersionMetadata;
    try {
      meta = VersionMetadata.parse(JSON.parse(req.meta));
    } catch (err) {
      throw field('meta', `not a valid model.json: ${describe(err)}`);
    }
    const modelDir = join(this.registry.dir, req.name);
    const target = join(modelDir, req.version);
    if (this.registry.generation.models.get(req.name)?.versions.has(req.version) || (await exists(target))) {
      throw createError('BUNRYU_ALREADY_EXISTS', `model ${req.name} already has a version ${req.version}: register another version name`);
    }
    // The default version is scored from the generation loaded now; holding it keeps its session alive.
    const generation = this.registry.acquire();
    let gates: Gate[];
    try {
      gates = await runGates(req.onnx, meta, await this.context(req.name, generation));
    } finally {
      this.registry.release(generation);
    }
    const problem = fileProblem(gates);
    if (problem) throw field('model', problem.reason ?? `${problem.name} failed`);
    const record: VersionStatus = {
      status: gates.every((g) => g.passed) ? 'ready' : 'rejected',
      gates,
      registeredAt: this.now().toISOString(),
      registeredBy: req.actor,
    };
    await mkdir(modelDir, { recursive: true });
    const staging = join(modelDir, `.staging-${req.version}-${randomBytes(6).toString('hex')}`);
    try {
      await mkdir(staging);
      await writeFile(join(staging, MODEL_FILE), req.onnx);
      await writeFile(join(staging, METADATA_FILE), req.meta);
      await writeFile(join(staging, STATUS_FILE), JSON.stringify(record, null, 2) + '\n');
      await rename(staging, target);
    } catch (err) {
      await rm(staging, { recursive: true, force: true });
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') throw createError('BUNRYU_ALREADY_EXISTS', `model ${req.name} already has a version ${req.version}: register another version name`);
      throw err;
    }
    await this.registry.reload();
    return this.view(req.name, req.version);
  }

  /**
   * Marks a version retired: it stops serving everywhere once replicas reload. Refused (409)
   * while the model's own model.json or `inUse` (routes and experiments) still name it.
   */
  async retire(name: string, version: string, actor: string, inUse: () => Promise<string[]>): Promise<VersionView> {
    const current = this.view(name, version);
    if (current.status === 'retired') return current;
    const model = this.registry.generation.models.get(name)!;
    const users = [
      ...(model.defaultVersion === version ? [`model ${name}'s defaultVersion`] : []),
      ...(model.fallbackVersion === version ? [`model ${name}'s fallbackVersion`] : []),
      ...(model.knobs.blendWith?.default === version ? [`model ${name}'s blendWith default`] : []),
      ...(await inUse()),
    ];
    if (users.length > 0) throw createError('BUNRYU_INVALID_TRANSITION', `version ${version} of ${name} is still in use by ${users.join(', ')}`, { usedBy: users });
    const dir = join(this.registry.dir, name, version);
    const before = VersionStatus.parse(JSON.parse(await readFile(join(dir, STATUS_FILE), 'utf8').catch(() => '{"status":"ready"}')));
    const record: VersionStatus = { ...before, status: 'retired', retiredAt: this.now().toISOString(), retiredBy: actor };
    const tmp = join(dir, `${STATUS_FILE}.${randomBytes(6).toString('hex')}.tmp`);
    await writeFile(tmp, JSON.stringify(record, null, 2) + '\n');
    await rename(tmp, join(dir, STATUS_FILE));
    await this.registry.reload();
    return this.view(name, version);
  }

  /** The model's evaluation set, gate limits and default version, as they are now. */
  private async context(name: string, generation: Generation): Promise<{ evaluation?: EvaluationSet; baseline?: Baseline; policy: GatePolicy }> {
    const dir = join(this.registry.dir, name);
    const evaluation = await readOptional(join(dir, EVALUATION_FILE), (t) => EvaluationFile.parse(JSON.parse(t)));
    const model = await readOptional(join(dir, METADATA_FILE), (t) => ModelMetadata.parse(JSON.parse(t)));
    const policy = { ...DEFAULT_GATE_POLICY, ...model?.gates };
    const loaded = generation.models.get(name);
    const base = loaded?.defaultVersion ? loaded.versions.get(loaded.defaultVersion) : undefined;
    const baseline: Baseline | undefined =
      base?.status === 'ready'
        ? {
            version: base.name,
            features: base.metadata.features,
            score: async (rows) => {
              const width = base.metadata.features.length;
              const data = new Float32Array(rows.length * width);
              rows.forEach((r, i) => data.set(r, i * width));
              return base.runner.run(data, rows.length);
            },
          }
        : undefined;
    return { ...(evaluation ? { evaluation } : {}), ...(baseline ? { baseline } : {}), policy };
  }
}

async function exists(path: string): Promise<boolean> {
  return readFile(join(path, METADATA_FILE)).then(
    () => true,
    (err: NodeJS.ErrnoException) => err.code !== 'ENOENT',
  );
}

async function readOptional<T>(path: string, parse: (text: string) => T): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return parse(text);
}

function describe(err: unknown): string {
  const e = err as { issues?: { path: PropertyKey[]; message: string }[]; message?: string };
  if (Array.isArray(e.issues)) return e.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`).join('; ');
  return (e.message ?? String(err)).split('\n')[0]!;
}

