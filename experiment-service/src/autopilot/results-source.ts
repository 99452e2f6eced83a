import { RolloutResultsSchema, type RolloutResults } from '@bunryu/core';

/** Where the autopilot reads an experiment's results: the aggregator's GET /v1/results/:experiment (SPEC §4). */
export interface ResultsSource {
  /** `metrics` restricts the answer to those metrics (the serving guardrails on the fast loop). */
  results(experiment: string, metrics?: readonly string[]): Promise<RolloutResults>;
}

export interface AggregatorResultsOptions {
  url: string;
  token?: string;
  /** An answer slower than this counts as missing: the autopilot holds. */
  timeoutMs?: number;
}

/** The aggregator over HTTP. */
export class AggregatorResults implements ResultsSource {
  constructor(private readonly options: AggregatorResultsOptions) {}

  async results(experiment: string, metrics?: readonly string[]): Promise<RolloutResults> {
    const query = metrics ? `?metrics=${encodeURIComponent(metrics.join(','))}` : '';
    const response = await fetch(`${this.options.url}/v1/results/${encodeURIComponent(experiment)}${query}`, {
      headers: this.options.token ? { authorization: `Bearer ${this.options.token}` } : {},
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 4000),
    });
    if (!response.ok) throw new Error(`the aggregator answered ${response.status} for ${experiment}`);
    const parsed = RolloutResultsSchema.safeParse(await response.json());
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new Error(`the aggregator's answer for ${experiment} is not results: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
    }
    return parsed.data;
  }
}
