/** One figure of `npm run bench` (written to bench/results.json). */
export interface BenchResult {
  scenario: string;
  metric: string;
  value: number;
  unit: string;
  /** The same metric measured for the baseline in the same run. */
  baseline?: number;
  /** value / baseline (or the share the metric is of the baseline budget). */
  ratio?: number;
  /** e.g. ">= 1.0" or "<= 0.05": compared with `ratio` (or `value` when there is no ratio). */
  target?: string;
  pass?: boolean;
  note?: string;
}

export function judge(r: BenchResult): BenchResult {
  if (!r.target) return r;
  const m = /^(>=|<=)\s*([\d.e-]+)$/.exec(r.target);
  if (!m) return r;
  const subject = r.ratio ?? r.value;
  const bound = Number(m[2]);
  return { ...r, pass: m[1] === '>=' ? subject >= bound : subject <= bound };
}
