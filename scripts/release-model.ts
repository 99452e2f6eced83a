/**
 * One command from a trained candidate to a guarded rollout (SPEC §12):
 *
 *   npm run release-model -- --version v3 [--model recommend] [--dir model-server/candidates/v3]
 *                            [--route recommend] [--quick] [--watch]
 *
 * registers the version on the model-server (its gates run there), and when it is ready starts
 * a release on the experiment-service (`POST /v1/releases`): the autopilot then ramps it, and
 * promotes it or rolls it back. `--quick` uses one-minute steps; `--watch` follows the rollout
 * until the autopilot has decided. Endpoints and token from the environment, as `npm start` sets
 * them (BUNRYU_ADMIN_TOKEN, EXPERIMENT_SERVICE_URL, MODEL_SERVER_URL).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultRolloutPlan } from '@bunryu/core';

export interface Gate {
  name: string;
  passed: boolean;
  value?: number | Record<string, number>;
  reason?: string;
}

export interface RegisteredVersion {
  model: string;
  version: string;
  status: string;
  gates: Gate[];
}

/** PUT /v1/models/:name/versions/:version with the folder's model.onnx and model.json. */
export async function registerVersion(o: { modelServerUrl: string; token: string; model: string; version: string; dir: string }): Promise<RegisteredVersion> {
  const form = new FormData();
  form.append('model', new Blob([new Uint8Array(await readFile(join(o.dir, 'model.onnx')))]), 'model.onnx');
  form.append('meta', new Blob([await readFile(join(o.dir, 'model.json'), 'utf8')], { type: 'application/json' }), 'model.json');
  const res = await fetch(`${o.modelServerUrl}/v1/models/${encodeURIComponent(o.model)}/versions/${encodeURIComponent(o.version)}`, {
    method: 'PUT',
    body: form,
    headers: { authorization: `Bearer ${o.token}` },
  });
  const body = (await res.json()) as RegisteredVersion & { error?: { message: string } };
  if (res.status !== 201) throw new Error(`registering ${o.model}/${o.version}: ${res.status} ${body.error?.message ?? JSON.stringify(body)}`);
  return body;
}

/** The default plan with one-minute steps, for a release watched live (the default takes hours). */
export const QUICK_PLAN = {
  ...defaultRolloutPlan(['control', 'treatment']),
  steps: [
    { weights: { control: 90, treatment: 10 }, minMinutes: 1, minUnits: 100 },
    { weights: { control: 50, treatment: 50 }, minMinutes: 1, minUnits: 300 },
  ],
};

/** POST /v1/releases: a guarded rollout of `params` on `route` against its current behaviour. */
export async function startRelease(o: { experimentServiceUrl: string; token: string; route: string; params: Record<string, unknown>; plan?: object }): Promise<{ key: string; status: string }> {
  const res = await fetch(`${o.experimentServiceUrl}/v1/releases`, {
    method: 'POST',
    headers: { authorization: `Bearer ${o.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ route: o.route, params: o.params, ...(o.plan ? { plan: o.plan } : {}) }),
  });
  const body = (await res.json()) as { key: string; status: string; error?: { message: string } };
  if (res.status !== 201) throw new Error(`starting the release: ${res.status} ${body.error?.message ?? JSON.stringify(body)}`);
  return body;
}

/** Follows an experiment until it leaves `running`, reporting each change of status or step. */
export async function watchRelease(o: { experimentServiceUrl: string; token: string; key: string; timeoutMs: number; log: (line: string) => void }): Promise<string> {
  const deadline = Date.now() + o.timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const res = await fetch(`${o.experimentServiceUrl}/v1/experiments/${encodeURIComponent(o.key)}`, { headers: { authorization: `Bearer ${o.token}` } });
    const e = (await res.json()) as { status: string; variants: { key: string; weight: number }[] };
    const now = `${e.status} at ${e.variants.map((v) => `${v.key} ${v.weight}%`).join(', ')}`;
    if (now !== last) o.log(`  ${o.key}: ${now}`);
    last = now;
    if (e.status !== 'running') return e.status;
    await new Promise((r) => setTimeout(r, 2000));
  }
  return 'running';
}

function describeGate(g: Gate): string {
  const value = g.value === undefined ? '' : typeof g.value === 'number' ? ` ${g.value}` : ` ${Object.entries(g.value).map(([k, v]) => `${k}=${v}`).join(' ')}`;
  return `  ${g.passed ? 'passed' : 'FAILED'} ${g.name}${value}${g.reason ? ` (${g.reason})` : ''}`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: 'recommend' },
      version: { type: 'string' },
      dir: { type: 'string' },
      route: { type: 'string', default: 'recommend' },
      quick: { type: 'boolean', default: false },
      watch: { type: 'boolean', default: false },
    },
  });
  if (!values.version) throw new Error('--version is required (train one with: npm run train -w model-server -- --version v3)');
  const token = process.env.BUNRYU_ADMIN_TOKEN ?? 'dev-admin-token';
  const modelServerUrl = process.env.MODEL_SERVER_URL ?? 'http://127.0.0.1:8082';
  const experimentServiceUrl = process.env.EXPERIMENT_SERVICE_URL ?? 'http://127.0.0.1:8081';
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const dir = values.dir ?? `model-server/candidates/${values.version}`;
  const v = await registerVersion({ modelServerUrl, token, model: values.model, version: values.version, dir });
  log(`${v.model}/${v.version}: ${v.status}`);
  for (const g of v.gates) log(describeGate(g));
  if (v.status !== 'ready') throw new Error(`${v.model}/${v.version} is ${v.status}: it will not be released`);
  const e = await startRelease({ experimentServiceUrl, token, route: values.route, params: { version: values.version }, ...(values.quick ? { plan: QUICK_PLAN } : {}) });
  log(`release ${e.key} started on route ${values.route}: the autopilot ramps it (dashboard: http://127.0.0.1:8084/#/experiments/${e.key})`);
  if (values.watch) log(`the autopilot decided: ${await watchRelease({ experimentServiceUrl, token, key: e.key, timeoutMs: 30 * 60_000, log })}`);
}

if (process.argv[1] && import.meta.url === new URL(process.argv[1], 'file://').href) {
  main().catch((err: unknown) => {
    process.stderr.write(`release-model: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
