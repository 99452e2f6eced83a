/**
 * The gates a model version passes before it may serve (SPEC §12), each with its figure:
 *
 * - `loads`: ONNX Runtime builds a session from the bytes.
 * - `features`: the graph's input and output match model.json (float [N, features], one score).
 * - `smoke`: scores of sample inputs (the evaluation set's rows, else a fixed pseudo-random grid)
 *   are finite and inside `outputRange` when model.json declares one.
 * - `latency`: single-row runs over a fixed batch, p50 and p99 per row, against the model's limit.
 * - `offline`: AUC and log-loss on the model's evaluation set beside the current default
 *   version's; the candidate may not lose more AUC than the model allows.
 *
 * `loads` and `features` are about the file itself: a version failing them is refused (4xx) and
 * never stored. The others judge a working model; failing one stores the version as `rejected`.
 */
import * as ort from 'onnxruntime-node';
import { auc, logLoss } from '../training/evaluation.ts';
import type { VersionMetadata } from '../models/model-metadata.ts';
import { signatureProblem } from '../models/signature.ts';

export type GateName = 'loads' | 'features' | 'smoke' | 'latency' | 'offline';

export interface Gate {
  name: GateName;
  passed: boolean;
  value?: number | Record<string, number>;
  reason?: string;
}

/** The model's held-out rows (`models/<name>/evaluation.json`): all features by name, and labels. */
export interface EvaluationSet {
  features: string[];
  rows: number[][];
  labels: number[];
}

/** Limits of a model's gates (`gates` in models/<name>/model.json). */
export interface GatePolicy {
  /** Most a single-row p99 may take (ms). */
  maxLatencyP99Ms: number;
  /** Most AUC a candidate may lose against the default version on the evaluation set. */
  maxAucDrop: number;
}

export const DEFAULT_GATE_POLICY: GatePolicy = { maxLatencyP99Ms: 25, maxAucDrop: 0.02 };

/** The current default version, scored on the same evaluation set. */
export interface Baseline {
  version: string;
  score(rows: readonly number[][]): Promise<Float32Array>;
  features: readonly string[];
}

const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = { logSeverityLevel: 4, intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' };
const SMOKE_ROWS = 256;
const LATENCY_RUNS = 200;

const round = (x: number, digits = 6) => Number(x.toFixed(digits));

/** Why a file gate failed, for the 4xx: the first failed gate's reason. */
export function fileProblem(gates: readonly Gate[]): Gate | undefined {
  return gates.find((g) => (g.name === 'loads' || g.name === 'features') && !g.passed);
}

export async function runGates(onnx: Uint8Array, meta: VersionMetadata, opts: { evaluation?: EvaluationSet; baseline?: Baseline; policy?: GatePolicy }): Promise<Gate[]> {
  const policy = opts.policy ?? DEFAULT_GATE_POLICY;
  const gates: Gate[] = [];
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(onnx, SESSION_OPTIONS);
    gates.push({ name: 'loads', passed: true, value: { bytes: onnx.length } });
  } catch (err) {
    return [{ name: 'loads', passed: false, reason: `ONNX Runtime cannot load it: ${firstLine(err)}` }];
  }
  try {
    const mismatch = signatureProblem(session, meta);
    gates.push(mismatch ? { name: 'features', passed: false, reason: mismatch } : { name: 'features', passed: true, value: { features: meta.features.length } });
    if (mismatch) return gates;
    const score = async (rows: readonly number[][]): Promise<Float32Array> => {
      const data = new Float32Array(rows.length * meta.features.length);
      rows.forEach((r, i) => data.set(r, i * meta.features.length));
      const out = (await session.run({ [meta.input]: new ort.Tensor('float32', data, [rows.length, meta.features.length]) }))[meta.output];
      if (!out || out.data.length !== rows.length) throw new Error(`output ${meta.output} gave ${out?.data.length ?? 0} values for ${rows.length} rows`);
      return out.data as Float32Array;
    };
    const evaluation = opts.evaluation && project(opts.evaluation, meta.features);
    gates.push(await smokeGate(score, meta, evaluation?.rows.slice(0, SMOKE_ROWS) ?? grid(meta.features.length)));
    gates.push(await latencyGate(score, meta.features.length, policy));
    gates.push(await offlineGate(score, meta, opts.evaluation, opts.baseline, policy));
    return gates;
  } finally {
    await session.release().catch(() => {});
  }
}

async function smokeGate(score: (rows: readonly number[][]) => Promise<Float32Array>, meta: VersionMetadata, rows: number[][]): Promise<Gate> {
  let out: Float32Array;
  try {
    out = await score(rows);
  } catch (err) {
    return { name: 'smoke', passed: false, reason: `running ${rows.length} sample rows failed: ${firstLine(err)}` };
  }
  const range = (meta as { outputRange?: unknown }).outputRange;
  const [lo, hi] = Array.isArray(range) && range.length === 2 ? (range as [number, number]) : [-Infinity, Infinity];
  let min = Infinity;
  let max = -Infinity;
  let bad = 0;
  for (const x of out) {
    if (!Number.isFinite(x) || x < lo || x > hi) bad++;
    if (Number.isFinite(x)) {
      min = Math.min(min, x);
      max = Math.max(max, x);
    }
  }
  const value: Record<string, number> = { rows: rows.length, outOfRange: bad, ...(min <= max ? { min: round(min), max: round(max) } : {}) };
  if (bad > 0) return { name: 'smoke', passed: false, value, reason: `${bad} of ${rows.length} sample scores are not finite or outside [${lo}, ${hi}]` };
  return { name: 'smoke', passed: true, value };
}

async function latencyGate(score: (rows: readonly number[][]) => Promise<Float32Array>, width: number, policy: GatePolicy): Promise<Gate> {
  const row = [Array.from({ length: width }, (_, i) => (i + 1) / (width + 1))];
  await score(row); // the first run allocates
  const times: number[] = [];
  for (let i = 0; i < LATENCY_RUNS; i++) {
    const t = performance.now();
    await score(row);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const q = (p: number) => times[Math.min(times.length - 1, Math.ceil(p * times.length) - 1)]!;
  const value = { p50Ms: round(q(0.5), 4), p99Ms: round(q(0.99), 4), runs: LATENCY_RUNS, limitP99Ms: policy.maxLatencyP99Ms };
  if (value.p99Ms > policy.maxLatencyP99Ms) return { name: 'latency', passed: false, value, reason: `p99 ${value.p99Ms} ms per row is above the model's limit of ${policy.maxLatencyP99Ms} ms` };
  return { name: 'latency', passed: true, value };
}

async function offlineGate(
  score: (rows: readonly number[][]) => Promise<Float32Array>,
  meta: VersionMetadata,
  evaluation: EvaluationSet | undefined,
  baseline: Baseline | undefined,
  policy: GatePolicy,
): Promise<Gate> {
  if (!evaluation) return { name: 'offline', passed: true, reason: 'the model has no evaluation set (evaluation.json): offline metrics not compared' };
  const mine = project(evaluation, meta.features);
  if (!mine) return { name: 'offline', passed: false, reason: `the evaluation set lacks features ${meta.features.filter((f) => !evaluation.features.includes(f)).join(', ')}` };
  const scores = await score(mine.rows);
  const [a, l] = [auc(scores, evaluation.labels), logLoss(scores, evaluation.labels)];
  if (!Number.isFinite(a) || !Number.isFinite(l)) return { name: 'offline', passed: false, value: { rows: evaluation.labels.length }, reason: 'AUC or log-loss on the evaluation set is not a number (scores that are not numbers?)' };
  const value: Record<string, number> = { auc: round(a), logLoss: round(l), rows: evaluation.labels.length };
  if (!baseline) return { name: 'offline', passed: true, value, reason: 'no default version to compare with' };
  const theirs = project(evaluation, baseline.features);
  if (!theirs) return { name: 'offline', passed: true, value, reason: `the default version ${baseline.version} cannot be scored on the evaluation set` };
  const base = await baseline.score(theirs.rows);
  value.baselineAuc = round(auc(base, evaluation.labels));
  value.baselineLogLoss = round(logLoss(base, evaluation.labels));
  const drop = value.baselineAuc! - value.auc!;
  if (drop > policy.maxAucDrop) {
    return { name: 'offline', passed: false, value, reason: `AUC ${value.auc} is ${round(drop, 4)} below the default version ${baseline.version}'s ${value.baselineAuc} (the model allows ${policy.maxAucDrop})` };
  }
  return { name: 'offline', passed: true, value };
}

/** The evaluation rows with only `features`, in that order; undefined when one is missing. */
function project(e: EvaluationSet, features: readonly string[]): { rows: number[][] } | undefined {
  const index = features.map((f) => e.features.indexOf(f));
  if (index.some((i) => i < 0)) return undefined;
  return { rows: e.rows.map((r) => index.map((i) => r[i]!)) };
}

/** A fixed pseudo-random grid in [0, 1) when the model has no evaluation set. */
function grid(width: number): number[][] {
  let a = 0x9e3779b9;
  const next = () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Array.from({ length: SMOKE_ROWS }, () => Array.from({ length: width }, next));
}

function firstLine(err: unknown): string {
  return ((err as Error)?.message ?? String(err)).split('\n')[0]!;
}
