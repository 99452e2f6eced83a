/**
 * Builds the demo model `recommend` from the synthetic click world: v1 sees only popularity and
 * position, v2 sees every feature, both logistic regressions exported as real ONNX graphs with
 * their held-out AUC and log-loss in model.json. Deterministic: the same seed writes the same bytes.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { logisticRegressionOnnx } from '../onnx/logistic-regression-onnx.ts';
import { EVALUATION_FILE, METADATA_FILE, MODEL_FILE, STATUS_FILE, VersionMetadata, type ModelMetadata, type VersionStatus } from '../models/model-metadata.ts';
import { runGates, type EvaluationSet } from '../lifecycle/gates.ts';
import { auc, logLoss } from './evaluation.ts';
import { fitLogisticRegression, predictLogistic } from './logistic-regression.ts';
import { featureDescriptions, features as allFeatures, generateDataset, type Feature } from './synthetic.ts';

export const DEMO_MODEL = 'recommend';
export const DEMO_SEED = 20_251_122;
export const DEMO_ROWS = 50_000;
const TEST_SHARE = 0.2;
/** Held-out rows kept for the offline gate: enough for AUC to ±0.01, small enough to gate in a blink. */
const EVALUATION_ROWS = 5_000;
const INPUT = 'features';
const OUTPUT = 'click_probability';

interface VersionPlan {
  version: string;
  description: string;
  features: readonly Feature[];
}

const PLANS: VersionPlan[] = [
  { version: 'v1', description: 'Logistic regression on item popularity and list position only (the baseline).', features: ['item_popularity', 'position'] },
  { version: 'v2', description: 'Logistic regression on every feature: user affinity, popularity, recency, price, position.', features: allFeatures },
];

export interface TrainOptions {
  rows?: number;
  seed?: number;
  /** Progress lines; the training command prints them. */
  log?: (line: string) => void;
}

export interface TrainedVersion {
  model: string;
  version: string;
  features: string[];
  weights: number[];
  bias: number;
  auc: number;
  logLoss: number;
}

export interface TrainSummary {
  versions: TrainedVersion[];
  oracleAuc: number;
  oracleLogLoss: number;
}

export async function trainDemoModels(modelDir: string, opts: TrainOptions = {}): Promise<TrainSummary> {
  const log = opts.log ?? (() => {});
  const rows = opts.rows ?? DEMO_ROWS;
  const seed = opts.seed ?? DEMO_SEED;
  const started = performance.now();

  log(`generating ${rows.toLocaleString('en-US')} synthetic impressions (seed ${seed})`);
  const data = generateDataset(rows, seed);
  const testSize = Math.round(rows * TEST_SHARE);
  const trainSize = rows - testSize;
  const trainLabels = data.labels.subarray(0, trainSize);
  const testLabels = data.labels.subarray(trainSize);
  const clicks = data.labels.reduce((s, y) => s + y, 0);
  log(`  ${clicks.toLocaleString('en-US')} clicks (CTR ${((clicks / rows) * 100).toFixed(1)}%); train ${trainSize.toLocaleString('en-US')} rows, held-out ${testSize.toLocaleString('en-US')}`);

  const oracleAuc = auc(data.truth.subarray(trainSize), testLabels);
  const oracleLogLoss = logLoss(data.truth.subarray(trainSize), testLabels);
  log(`  the true click probability scores held-out AUC ${oracleAuc.toFixed(4)}, log-loss ${oracleLogLoss.toFixed(4)} (the ceiling)`);

  // Held-out rows for the offline gate of every later version (models/<name>/evaluation.json).
  const evaluation: EvaluationSet = {
    features: [...allFeatures],
    rows: data.rows.slice(trainSize, trainSize + EVALUATION_ROWS).map((r) => allFeatures.map((f) => r[f])),
    labels: Array.from(testLabels.subarray(0, EVALUATION_ROWS)),
  };
  await mkdir(join(modelDir, DEMO_MODEL), { recursive: true });
  await writeAtomically(join(modelDir, DEMO_MODEL, EVALUATION_FILE), JSON.stringify(evaluation) + '\n');

  const versions: TrainedVersion[] = [];
  for (const plan of PLANS) {
    const fitted = fitVersion(plan, data, trainSize, { seed, rows, oracleAuc, oracleLogLoss }, log);
    // The demo versions pass the same gates as a registered one, against v1 as the default.
    const baseline = versions[0] && { version: versions[0].version, features: versions[0].features, score: async (rows: readonly number[][]) => Float32Array.from(rows.map((x) => predictLogistic(versions[0]!, x))) };
    const gates = await runGates(fitted.onnx, VersionMetadata.parse(fitted.metadata), { evaluation, ...(baseline ? { baseline } : {}) });
    const record: VersionStatus = { status: gates.every((g) => g.passed) ? 'ready' : 'rejected', gates, registeredAt: new Date().toISOString(), registeredBy: 'training' };
    log(`  gates: ${gates.map((g) => `${g.name} ${g.passed ? 'passed' : `FAILED (${g.reason})`}`).join(', ')}`);
    const dir = join(modelDir, DEMO_MODEL, plan.version);
    await mkdir(dir, { recursive: true });
    await writeAtomically(join(dir, MODEL_FILE), fitted.onnx);
    await writeAtomically(join(dir, METADATA_FILE), JSON.stringify(fitted.metadata, null, 2) + '\n');
    await writeAtomically(join(dir, STATUS_FILE), JSON.stringify(record, null, 2) + '\n');
    log(`  wrote ${join(DEMO_MODEL, plan.version, MODEL_FILE)} (${fitted.onnx.length} bytes) and ${METADATA_FILE}`);
    versions.push(fitted.trained);
  }

  const modelMetadata: ModelMetadata = {
    description: 'Click probability of an item shown to a user (the demo route `recommend`).',
    defaultVersion: 'v1',
    fallbackVersion: 'v1',
    knobs: {
      blend: { description: "Weight of the selected version's score; the rest goes to blendWith.", min: 0, max: 1 },
      blendWith: { description: 'The version the selected one is blended with.', default: 'v1' },
    },
  };
  await writeAtomically(join(modelDir, DEMO_MODEL, METADATA_FILE), JSON.stringify(modelMetadata, null, 2) + '\n');
  log(`trained ${versions.length} versions of ${DEMO_MODEL} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return { versions, oracleAuc, oracleLogLoss };
}

const round = (x: number) => Math.round(x * 1e6) / 1e6;

/** One version fitted on the dataset's first `trainSize` rows: its ONNX bytes, model.json and figures. */
function fitVersion(
  plan: VersionPlan,
  data: ReturnType<typeof generateDataset>,
  trainSize: number,
  context: { seed: number; rows: number; oracleAuc: number; oracleLogLoss: number },
  log: (line: string) => void,
): { onnx: Uint8Array; metadata: Record<string, unknown>; trained: TrainedVersion } {
  const rows = data.rows.length;
  const trainLabels = data.labels.subarray(0, trainSize);
  const testLabels = data.labels.subarray(trainSize);
  const matrix = (from: number, to: number) => data.rows.slice(from, to).map((r) => plan.features.map((f) => r[f]));
  log(`training ${DEMO_MODEL}/${plan.version} on ${plan.features.join(', ')}`);
  const fit = fitLogisticRegression(matrix(0, trainSize), trainLabels, {
    onIteration: ({ iteration, logLoss: loss, step }) => log(`  iteration ${iteration}: train log-loss ${loss.toFixed(5)}, largest step ${step.toExponential(2)}`),
  });
  // The ONNX file stores float32: publish exactly what it holds.
  const weights = fit.weights.map((w) => Math.fround(w));
  const bias = Math.fround(fit.bias);
  const scores = matrix(trainSize, rows).map((x) => predictLogistic({ weights, bias }, x));
  const versionAuc = auc(scores, testLabels);
  const versionLogLoss = logLoss(scores, testLabels);
  log(`  ${DEMO_MODEL}/${plan.version}: held-out AUC ${versionAuc.toFixed(4)}, log-loss ${versionLogLoss.toFixed(4)} after ${fit.iterations} iterations`);
  const onnx = logisticRegressionOnnx({ input: INPUT, output: OUTPUT, features: plan.features, weights, bias, doc: plan.description, metadata: { model: DEMO_MODEL, version: plan.version } });
  const metadata = {
    description: plan.description,
    features: [...plan.features],
    featureDescriptions: Object.fromEntries(plan.features.map((f) => [f, featureDescriptions[f]])),
    input: INPUT,
    output: OUTPUT,
    outputRange: [0, 1],
    metrics: {
      auc: round(versionAuc),
      logLoss: round(versionLogLoss),
      oracleAuc: round(context.oracleAuc),
      oracleLogLoss: round(context.oracleLogLoss),
      trainRows: trainSize,
      testRows: rows - trainSize,
    },
    logisticRegression: { weights, bias },
    training: { dataset: 'synthetic-clicks', seed: context.seed, rows: context.rows, algorithm: 'irls', iterations: fit.iterations },
  };
  return { onnx, metadata, trained: { model: DEMO_MODEL, version: plan.version, features: [...plan.features], weights, bias, auc: versionAuc, logLoss: versionLogLoss } };
}

/**
 * A new candidate version of the demo model, written to `outDir` as model.onnx + model.json for
 * registration (`PUT /v1/models/recommend/versions/:version`), which gates it. Trained on a
 * fresh sample of the same world (`seed`), on `features` (all by default).
 */
export async function trainCandidate(outDir: string, opts: { version: string; features?: readonly Feature[]; seed?: number; rows?: number; log?: (line: string) => void }): Promise<TrainedVersion> {
  const log = opts.log ?? (() => {});
  const rows = opts.rows ?? DEMO_ROWS;
  const seed = opts.seed ?? DEMO_SEED + 1;
  const data = generateDataset(rows, seed);
  const trainSize = rows - Math.round(rows * TEST_SHARE);
  const testTruth = data.truth.subarray(trainSize);
  const testLabels = data.labels.subarray(trainSize);
  const features = opts.features ?? allFeatures;
  const plan: VersionPlan = { version: opts.version, description: `Logistic regression on ${features.join(', ')} (seed ${seed}).`, features };
  const fitted = fitVersion(plan, data, trainSize, { seed, rows, oracleAuc: auc(testTruth, testLabels), oracleLogLoss: logLoss(testTruth, testLabels) }, log);
  await mkdir(outDir, { recursive: true });
  await writeAtomically(join(outDir, MODEL_FILE), fitted.onnx);
  await writeAtomically(join(outDir, METADATA_FILE), JSON.stringify(fitted.metadata, null, 2) + '\n');
  log(`  wrote ${join(outDir, MODEL_FILE)} and ${METADATA_FILE}: register it with PUT /v1/models/${DEMO_MODEL}/versions/${opts.version}`);
  return fitted.trained;
}

/** A watcher or a concurrent reader never sees half a file. */
async function writeAtomically(path: string, content: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, content);
  await rename(tmp, path);
}
