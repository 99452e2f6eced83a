/**
 * `npm run bench rollback`: SPEC §15's time to rollback on the real processes (embedded stack):
 * a treatment whose upstream fails 20% of requests at the plan's 5% step, 100 requests/s of new
 * units; the time from the first bad answer a client got to the last answer still given under the
 * experiment, and the units exposed to the treatment. Median of a few runs. Anchor: Flagger's
 * default analysis (1 min interval × threshold 5) needs about 5 minutes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchResult } from '../lib/result.ts';
import { rollbackDrill } from '../../e2e/test/support/rollback-drill.ts';
import { startStack } from '../../e2e/test/support/stack.ts';

const RUNS = Number(process.env.ROLLBACK_BENCH_RUNS ?? 3);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export async function run(): Promise<BenchResult[]> {
  const modelDir = mkdtempSync(join(tmpdir(), 'bunryu-bench-models-'));
  const stack = await startStack({ AUTOPILOT_SERVING_INTERVAL_MS: '1000' }, modelDir);
  const seconds: number[] = [];
  const units: number[] = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      const drill = await rollbackDrill(stack, { key: `bench-rollback-${Date.now()}-${i}`, failRate: 0.2, requestsPerSecond: 100, timeoutMs: 120_000 });
      if (drill.finalStatus !== 'rolled_back') throw new Error(`run ${i + 1}: not rolled back within 120 s (${drill.finalStatus})`);
      seconds.push(drill.secondsToRollback);
      units.push(drill.treatmentUnits);
      process.stdout.write(`   run ${i + 1}: ${drill.secondsToRollback.toFixed(1)} s, ${drill.treatmentUnits} treatment units, ${drill.requests} requests; ${drill.decision?.message ?? ''}\n`);
    }
  } finally {
    await stack.close();
    rmSync(modelDir, { recursive: true, force: true });
  }
  const note = `${RUNS} runs: ${seconds.map((s) => s.toFixed(1)).join(', ')} s; ${units.join(', ')} units; serving guardrails every 1 s`;
  return [
    { scenario: 'rollback', metric: '20% failing at 5%, 100 req/s: first bad answer → last answer under the experiment (median)', value: median(seconds), unit: 's', target: '<= 30', note },
    { scenario: 'rollback', metric: '20% failing at 5%: units exposed to the treatment (median)', value: median(units), unit: 'units', target: '<= 300', note },
  ];
}
