/**
 * The guarded-rollout demo (`npm run demo -- --rollouts`, SPEC §10): two rollouts the autopilot
 * drives by itself, each on its own route and layer so neither meets the demo experiment
 * `recommend-v2` (mutual exclusion is per layer):
 *
 * - `rollout-v2`: v1 → v2, a sound version. It ramps 10% → 25% → 50% and is promoted.
 * - `rollout-v2-faulty`: v1 → v2-faulty, v2's graph registered with injected faults (a share of
 *   500s and of slow answers, model.json `faults`). The serving guardrails see it and the
 *   autopilot rolls it back at the first step.
 *
 * Everything goes through the services' APIs, as a releaser would.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RolloutPlanInput } from '@bunryu/core';

export const FAULTY_VERSION = 'v2-faulty';
/** One answer in ten fails, one in five waits 150 ms: both serving guardrails see it. */
export const FAULTY_FAULTS = { errorRate: 0.1, slowRate: 0.2, delayMs: 150 };

export interface DemoRollout {
  /** The experiment key; a rerun after it finished takes the next free `<key>-<n>`. */
  key: string;
  route: string;
  version: string;
  name: string;
  hypothesis: string;
}

export const DEMO_ROLLOUTS: readonly DemoRollout[] = [
  { key: 'rollout-v2', route: 'recommend-rollout-v2', version: 'v2', name: 'Guarded rollout of v2', hypothesis: 'v2 is as healthy as v1: the autopilot ramps it through every step and promotes it' },
  {
    key: 'rollout-v2-faulty',
    route: 'recommend-rollout-faulty',
    version: FAULTY_VERSION,
    name: 'Guarded rollout of v2-faulty',
    hypothesis: 'v2-faulty fails one answer in ten and is slow on one in five: the autopilot rolls it back by itself',
  },
];

/**
 * Short steps so the demo finishes in minutes (SPEC §10's default plan takes hours): each step
 * holds one minute and until every variant has its units. `promote` rather than
 * `promote-if-primary-wins`: the demo shows the guardrails clearing each step, not a CTR test
 * (that one is the demo experiment's), which would take longer than a demo should.
 */
export const DEMO_ROLLOUT_PLAN: RolloutPlanInput = {
  steps: [
    { weights: { control: 90, treatment: 10 }, minMinutes: 1, minUnits: 100 },
    { weights: { control: 75, treatment: 25 }, minMinutes: 1, minUnits: 200 },
    { weights: { control: 50, treatment: 50 }, minMinutes: 1, minUnits: 300 },
  ],
  guardrails: [
    { metric: 'error_rate', harm: 'increase', margin: 0 },
    { metric: 'latency_ms', harm: 'increase', margin: 0.1 },
  ],
  alpha: 0.05,
  minUnitsForDecision: 50,
  onHarm: 'rollback',
  onSrm: 'pause',
  onNoTraffic: { afterMinutes: 5, action: 'pause' },
  whenDone: 'promote',
};

/** Each rollout's route gets this many visits a second: a step's units within its minute, little CPU. */
export const DEMO_ROLLOUT_VISITS_PER_SECOND = 20;

export interface RolloutSeedOptions {
  experimentServiceUrl: string;
  modelServerUrl: string;
  token: string;
  /** The model directory holding the demo models (v2's graph is read from it). */
  modelDir?: string;
  /** Which of DEMO_ROLLOUTS to seed (all by default). */
  only?: readonly string[];
  log?: (line: string) => void;
}

export interface SeededRollout extends DemoRollout {
  /** The key of the running experiment (`key`, or `key-<n>` when earlier runs finished). */
  experiment: string;
}

const DEFAULT_MODEL_DIR = fileURLToPath(new URL('../model-server/models', import.meta.url));
const FINISHED = ['released', 'rolled_back', 'archived'];

type Call = (method: string, path: string, body?: unknown) => Promise<{ status: number; body: unknown }>;

function client(base: string, token: string): Call {
  return async (method, path, body) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as unknown) : null };
  };
}

function expectStatus(what: string, r: { status: number; body: unknown }, ok: number[]): void {
  if (!ok.includes(r.status)) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
}

/**
 * Registers `v2-faulty` on the model-server (once): v2's graph with FAULTY_FAULTS in its
 * model.json. The gates judge the graph, which is v2's, so it is `ready` like any new version.
 */
export async function registerFaultyVersion(o: RolloutSeedOptions): Promise<void> {
  const log = o.log ?? (() => {});
  const url = `${o.modelServerUrl}/v1/models/recommend/versions/${FAULTY_VERSION}`;
  const existing = await fetch(url);
  if (existing.status === 200) return;
  const dir = join(o.modelDir ?? DEFAULT_MODEL_DIR, 'recommend', 'v2');
  const [onnx, meta] = await Promise.all([readFile(join(dir, 'model.onnx')), readFile(join(dir, 'model.json'), 'utf8')]);
  const form = new FormData();
  form.set('model', new Blob([onnx]), 'model.onnx');
  form.set('meta', JSON.stringify({ ...(JSON.parse(meta) as object), description: `v2 with injected faults for the rollout demo: ${JSON.stringify(FAULTY_FAULTS)}`, faults: FAULTY_FAULTS }));
  const res = await fetch(url, { method: 'PUT', headers: { authorization: `Bearer ${o.token}` }, body: form });
  const body = (await res.json()) as { status?: string };
  if (res.status !== 201 || body.status !== 'ready') throw new Error(`registering ${FAULTY_VERSION}: ${res.status} ${JSON.stringify(body)}`);
  log(`registered model version ${FAULTY_VERSION} (v2's graph; faults ${JSON.stringify(FAULTY_FAULTS)})`);
}

/**
 * Seeds and starts the demo rollouts. Idempotent: a rollout still running from an earlier start is
 * left to carry on; one that finished (promoted, rolled back) is archived and a fresh one started
 * under the next key, so every `--rollouts` run shows both outcomes again.
 */
export async function seedRollouts(o: RolloutSeedOptions): Promise<SeededRollout[]> {
  const log = o.log ?? (() => {});
  const call = client(o.experimentServiceUrl, o.token);
  const chosen = DEMO_ROLLOUTS.filter((r) => !o.only || o.only.includes(r.key));
  if (chosen.some((r) => r.version === FAULTY_VERSION)) await registerFaultyVersion(o);
  const seeded: SeededRollout[] = [];
  for (const r of chosen) {
    expectStatus(
      `route ${r.route}`,
      await call('PUT', `/v1/routes/${r.route}`, {
        upstream: o.modelServerUrl,
        path: '/v1/models/recommend',
        defaultParams: { model: 'recommend', version: 'v1' },
        timeoutMs: 1000,
        fallback: { status: 200, body: { model: 'recommend', version: 'fallback', predictions: [] } },
      }),
      [200, 201],
    );
    // The first of `key`, `key-2`, … that is new or still live; finished ones on the way are archived.
    let experiment = r.key;
    let status: string | null = null;
    for (let n = 2; ; n++) {
      const found = await call('GET', `/v1/experiments/${experiment}`);
      if (found.status === 404) break;
      expectStatus(`experiment ${experiment}`, found, [200]);
      status = (found.body as { status: string }).status;
      if (!FINISHED.includes(status)) break;
      // A finished rollout still decides its route's version (a release serves v2 to everyone): archive it first.
      if (status !== 'archived') expectStatus(`archive ${experiment}`, await call('POST', `/v1/experiments/${experiment}/archive`), [200]);
      experiment = `${r.key}-${n}`;
      status = null;
    }
    if (status === null) {
      const first = DEMO_ROLLOUT_PLAN.steps[0]!.weights;
      expectStatus(
        `experiment ${experiment}`,
        await call('POST', '/v1/experiments', {
          key: experiment,
          name: r.name,
          hypothesis: r.hypothesis,
          route: r.route,
          // Its own layer: the demo experiment's layer (`ranking`) is full, and rollouts never share units.
          layer: experiment,
          trafficPercent: 100,
          variants: [
            { key: 'control', weight: first.control, params: { version: 'v1' } },
            { key: 'treatment', weight: first.treatment, params: { version: r.version } },
          ],
          metrics: { primary: 'ctr', guardrails: ['error_rate', 'latency_ms'] },
          rollout: DEMO_ROLLOUT_PLAN,
        }),
        [201],
      );
      log(`created the guarded rollout "${experiment}" on route "${r.route}" (v1 → ${r.version})`);
      status = 'draft';
    }
    if (status === 'draft') {
      expectStatus(`start ${experiment}`, await call('POST', `/v1/experiments/${experiment}/start`), [200]);
      log(`started "${experiment}": the autopilot drives it now`);
    } else {
      log(`"${experiment}" is ${status} from an earlier start: left as it is`);
    }
    seeded.push({ ...r, experiment });
  }
  return seeded;
}

interface RolloutView {
  status: string;
  plan: { steps: unknown[] };
  state: { step: number; autopilot: string };
  currentWeights: Record<string, number>;
  lastDecision: { decision: { action: string; reason: string; message: string } } | null;
}

/**
 * Prints each rollout's progress as it changes (step, hold reason, the action taken) until every
 * one has finished or the signal aborts: the terminal's view of what the dashboard's Release tab
 * shows.
 */
export async function watchRollouts(o: { experimentServiceUrl: string; token: string; rollouts: readonly SeededRollout[]; signal?: AbortSignal; everyMs?: number; log: (line: string) => void }): Promise<Record<string, string>> {
  const call = client(o.experimentServiceUrl, o.token);
  const started = Date.now();
  const last = new Map<string, string>();
  const outcome: Record<string, string> = {};
  while (!o.signal?.aborted && Object.keys(outcome).length < o.rollouts.length) {
    for (const r of o.rollouts) {
      if (outcome[r.experiment]) continue;
      const res = await call('GET', `/v1/experiments/${r.experiment}/rollout`).catch(() => null);
      if (!res || res.status !== 200) continue;
      const v = res.body as RolloutView;
      const weights = Object.entries(v.currentWeights).map(([k, w]) => `${k} ${w}%`).join(', ');
      const d = v.lastDecision?.decision;
      const line = FINISHED.includes(v.status)
        ? `${v.status.replace('_', ' ')} after ${Math.round((Date.now() - started) / 1000)} s${d ? `: ${d.message}` : ''}`
        : `step ${v.state.step + 1} of ${v.plan.steps.length} (${weights})${d ? `, ${d.action}: ${d.message}` : ''}`;
      if (FINISHED.includes(v.status)) outcome[r.experiment] = v.status;
      // Hold messages carry running counts: print on a change of step, status or reason only.
      const change = `${v.status} ${v.state.step} ${d?.reason ?? ''}`;
      if (last.get(r.experiment) !== change) o.log(`${r.experiment}: ${line}`);
      last.set(r.experiment, change);
    }
    await new Promise((resolve) => setTimeout(resolve, o.everyMs ?? 2000));
  }
  return outcome;
}
