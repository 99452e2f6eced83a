/**
 * `npm run train -w model-server`: trains the demo models into MODEL_DIR, printing progress.
 * `npm run train -w model-server -- --version v3 [--features a,b] [--seed n] [--out dir]`: trains
 * a new candidate version into `dir` (default `candidates/<version>`) for registration.
 */
import { parseArgs } from 'node:util';
import { readConfig } from '../config.ts';
import { features as allFeatures, type Feature } from './synthetic.ts';
import { trainCandidate, trainDemoModels } from './train-demo-models.ts';

const { values } = parseArgs({ options: { version: { type: 'string' }, features: { type: 'string' }, seed: { type: 'string' }, out: { type: 'string' } } });
const print = (line: string) => process.stdout.write(`${line}\n`);

if (values.version) {
  const features = values.features?.split(',').map((f) => f.trim()) ?? [...allFeatures];
  const unknown = features.filter((f) => !(allFeatures as readonly string[]).includes(f));
  if (unknown.length > 0) {
    process.stderr.write(`--features: unknown ${unknown.join(', ')} (the world has ${allFeatures.join(', ')})\n`);
    process.exit(2);
  }
  const out = values.out ?? `candidates/${values.version}`;
  const v = await trainCandidate(out, { version: values.version, features: features as Feature[], ...(values.seed ? { seed: Number(values.seed) } : {}), log: print });
  print(`\ncandidate ${v.model}/${v.version}: held-out AUC ${v.auc.toFixed(4)}, log-loss ${v.logLoss.toFixed(4)}, in ${out}`);
} else {
  const config = readConfig();
  const summary = await trainDemoModels(config.MODEL_DIR, { log: print });
  print(`\nmodels in ${config.MODEL_DIR}:`);
  for (const v of summary.versions) print(`  ${v.model}/${v.version}  AUC ${v.auc.toFixed(4)}  log-loss ${v.logLoss.toFixed(4)}  (${v.features.length} features)`);
  print(`  true click probability  AUC ${summary.oracleAuc.toFixed(4)}  log-loss ${summary.oracleLogLoss.toFixed(4)}`);
  print('a running model-server picks them up by itself (or POST /v1/models/reload)');
}
