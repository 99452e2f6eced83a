/** `npm run train -w model-server`: trains the demo models into MODEL_DIR, printing progress. */
import { readConfig } from '../config.ts';
import { trainDemoModels } from './train-demo-models.ts';

const config = readConfig();
const summary = await trainDemoModels(config.MODEL_DIR, { log: (line) => process.stdout.write(`${line}\n`) });
process.stdout.write(`\nmodels in ${config.MODEL_DIR}:\n`);
for (const v of summary.versions) {
  process.stdout.write(`  ${v.model}/${v.version}  AUC ${v.auc.toFixed(4)}  log-loss ${v.logLoss.toFixed(4)}  (${v.features.length} features)\n`);
}
process.stdout.write(`  true click probability  AUC ${summary.oracleAuc.toFixed(4)}  log-loss ${summary.oracleLogLoss.toFixed(4)}\n`);
process.stdout.write('a running model-server picks them up by itself (or POST /v1/models/reload)\n');
