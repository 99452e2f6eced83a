/**
 * `npm run bench [filter]`: runs every `bench/scenarios/*.bench.ts` and `<package>/bench/*.bench.ts`,
 * prints one line per figure and writes bench/results.json. Figures are ratios against baselines
 * measured in the same run (SPEC §7); absolute numbers depend on the machine.
 */
import { readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { judge, type BenchResult } from './lib/result.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const filter = process.argv[2];

const dirs = [join(root, 'bench/scenarios'), ...readdirSync(root).map((d) => join(root, d, 'bench')).filter((d) => !d.startsWith(join(root, 'bench')))];
const files = dirs
  .filter((d) => existsSync(d))
  .flatMap((d) => readdirSync(d).filter((f) => f.endsWith('.bench.ts')).map((f) => join(d, f)))
  .filter((f) => !filter || relative(root, f).includes(filter))
  .sort();

const fmt = (n: number) => (Math.abs(n) >= 100 ? Math.round(n).toLocaleString('en-US') : n.toPrecision(3));
const all: BenchResult[] = [];
let failed = 0;
for (const file of files) {
  const name = relative(root, file);
  process.stdout.write(`\n== ${name}\n`);
  try {
    const mod = (await import(file)) as { run: () => Promise<BenchResult[]> };
    for (const raw of await mod.run()) {
      const r = judge(raw);
      all.push(r);
      const ratio = r.ratio === undefined ? '' : `  ratio ${r.ratio.toFixed(3)} (baseline ${fmt(r.baseline ?? NaN)})`;
      const verdict = r.pass === undefined ? '' : `  target ${r.target} ${r.pass ? 'PASS' : 'MISS'}`;
      process.stdout.write(`${r.scenario.padEnd(14)} ${r.metric.padEnd(52)} ${fmt(r.value).padStart(12)} ${r.unit}${ratio}${verdict}\n`);
    }
  } catch (err) {
    failed++;
    process.stdout.write(`   failed: ${(err as Error).stack ?? err}\n`);
  }
}
writeFileSync(join(root, 'bench/results.json'), JSON.stringify(all, null, 2) + '\n');
process.stdout.write(`\nwrote bench/results.json (${all.length} figures${failed ? `, ${failed} scenario files failed` : ''})\n`);
process.exit(failed ? 1 : 0);
