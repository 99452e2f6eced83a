/**
 * Issue #22 / SPEC §15 interleaving sensitivity: "on the demo world, interleaving v1 against v2
 * reaches p < 0.05 with ≥ 10× fewer units than the A/B test of the same pair (median over seeded
 * runs)".
 *
 * The demo world is the one `npm run demo` serves: the demo models v1 and v2 as trained for it
 * (the same rows, seed and features; their float32 weights, which are what the ONNX graphs hold)
 * and the synthetic world's true click probability. Each unit makes one visit: CANDIDATES items
 * are drawn, a model ranks them by its score, PAGE of them are shown, and the user clicks each
 * shown item with its true click probability at the position it is shown (the world's position
 * effect is the users' position bias).
 * - A/B: the unit sees v1's or v2's page (a fair coin); the metric is clicks per unit; the test is
 *   the always-valid mSPRT of core (SPEC §6), looked at after every unit.
 * - Interleaving: the unit sees the team-draft merge of both pages seeded by its request id
 *   (core's `interleave`); its clicks are credited to the teams; the unit prefers the ranking with
 *   more credited clicks; the test is core's always-valid sign test, looked at after every unit.
 * Units needed: the first unit count at which the running minimum of the p-value is below 0.05.
 * Both tests are always valid, so stopping at the first look below 0.05 is honest for both.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { interleave, mixingVariance, preference, sequentialPValue, sequentialSignPValue } from '@bunryu/core';
import type { BenchResult } from '../lib/result.ts';
import { predictLogistic } from '../../model-server/src/training/logistic-regression.ts';
import { createRng, features, sampleInstance, trueClickProbability, type Instance } from '../../model-server/src/training/synthetic.ts';
import { trainDemoModels, type TrainedVersion } from '../../model-server/src/training/train-demo-models.ts';

const RUNS = Number(process.env.BENCH_INTERLEAVING_RUNS ?? 21);
const CANDIDATES = 20;
const PAGE = 5;
/** A run that has not decided by then is counted at this size (a lower bound of what it needs). */
const MAX_UNITS = 200_000;
const ALPHA = 0.05;

interface Item {
  id: string;
  x: Instance;
}

/** The model's ranking of the candidates: by its score, the position feature held at the top slot (it is not known before ranking). */
function ranked(model: TrainedVersion, items: readonly Item[]): string[] {
  const score = (x: Instance) => predictLogistic(model, model.features.map((f) => (f === 'position' ? 1 : x[f as keyof Instance])));
  return items
    .map((it) => ({ id: it.id, s: score(it.x) }))
    .sort((a, b) => b.s - a.s)
    .slice(0, PAGE)
    .map((r) => r.id);
}

/** Which of the shown ids the user clicks: each with its true probability at its position. */
function clicks(shown: readonly string[], byId: ReadonlyMap<string, Instance>, rng: () => number): Set<string> {
  const out = new Set<string>();
  shown.forEach((id, i) => {
    if (rng() < trueClickProbability({ ...byId.get(id)!, position: i + 1 })) out.add(id);
  });
  return out;
}

function visit(rng: () => number, unit: number): { items: Item[]; byId: Map<string, Instance> } {
  const items = Array.from({ length: CANDIDATES }, (_, i) => ({ id: `u${unit}-i${i}`, x: sampleInstance(rng) }));
  return { items, byId: new Map(items.map((it) => [it.id, it.x])) };
}

/** Units until the A/B test's running sequential p-value drops below α. */
function abUnits(v1: TrainedVersion, v2: TrainedVersion, seed: number): number {
  const rng = createRng(seed);
  const arms = [0, 1].map(() => ({ n: 0, sum: 0, sq: 0 }));
  for (let unit = 1; unit <= MAX_UNITS; unit++) {
    const arm = rng() < 0.5 ? 0 : 1;
    const { items, byId } = visit(rng, unit);
    const y = clicks(ranked(arm === 0 ? v1 : v2, items), byId, rng).size;
    const a = arms[arm]!;
    a.n++;
    a.sum += y;
    a.sq += y * y;
    const [c, t] = arms as [typeof a, typeof a];
    if (c.n < 2 || t.n < 2) continue;
    const variance = (s: typeof a) => (s.sq - (s.sum * s.sum) / s.n) / (s.n - 1);
    const [vc, vt] = [variance(c), variance(t)];
    const diff = t.sum / t.n - c.sum / c.n;
    if (vc + vt > 0 && sequentialPValue(diff, vc / c.n + vt / t.n, mixingVariance(vc, vt)) < ALPHA) return unit;
  }
  return MAX_UNITS;
}

/** Units until interleaving's running sequential sign-test p-value drops below α. */
function interleavingUnits(v1: TrainedVersion, v2: TrainedVersion, seed: number): { units: number; wins: number; losses: number; ties: number } {
  const rng = createRng(seed);
  const tally = { wins: 0, losses: 0, ties: 0 };
  for (let unit = 1; unit <= MAX_UNITS; unit++) {
    const { items, byId } = visit(rng, unit);
    const merged = interleave(ranked(v2, items), ranked(v1, items), `req-${seed}-${unit}`, PAGE);
    const clicked = clicks(merged.items, byId, rng);
    const credit = { a: 0, b: 0 };
    merged.items.forEach((id, i) => clicked.has(id) && credit[merged.teams[i]!]++);
    const p = preference(credit.a, credit.b);
    tally[p === 'win' ? 'wins' : p === 'loss' ? 'losses' : 'ties']++;
    if (p !== 'tie' && sequentialSignPValue(tally.wins, tally.losses) < ALPHA) return { units: unit, ...tally };
  }
  return { units: MAX_UNITS, ...tally };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function run(): Promise<BenchResult[]> {
  const dir = await mkdtemp(join(tmpdir(), 'bunryu-bench-interleaving-'));
  try {
    const { versions } = await trainDemoModels(dir);
    const [v1, v2] = [versions.find((v) => v.version === 'v1')!, versions.find((v) => v.version === 'v2')!];
    if (!features.includes('position')) throw new Error('the demo world has no position feature');
    const ab: number[] = [];
    const il: number[] = [];
    const ratios: number[] = [];
    let preferred = 0;
    for (let r = 0; r < RUNS; r++) {
      const a = abUnits(v1, v2, 1000 + r);
      const i = interleavingUnits(v1, v2, 2000 + r);
      ab.push(a);
      il.push(i.units);
      ratios.push(a / i.units);
      if (i.wins > i.losses) preferred++;
    }
    return [
      { scenario: 'interleaving', metric: `A/B units to p < 0.05, v2 against v1 (median of ${RUNS})`, value: median(ab), unit: 'units', note: `range ${Math.min(...ab)}–${Math.max(...ab)}; always-valid mSPRT on clicks per unit` },
      { scenario: 'interleaving', metric: `interleaving units to p < 0.05 (median of ${RUNS})`, value: median(il), unit: 'units', note: `range ${Math.min(...il)}–${Math.max(...il)}; always-valid sign test on per-unit preference` },
      { scenario: 'interleaving', metric: 'A/B units / interleaving units (median of the runs\' ratios)', value: median(ratios), unit: '×', target: '>= 10' },
      { scenario: 'interleaving', metric: 'runs in which interleaving preferred v2 (the better model)', value: preferred / RUNS, unit: 'share', target: '>= 1' },
    ];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await run()) process.stdout.write(`${r.metric.padEnd(64)} ${r.value.toFixed(2).padStart(10)} ${r.unit}\n`);
}
