import { createError, srm, type Experiment } from '@bunryu/core';
import type { Logger } from '@bunryu/platform/log';
import { OPEN_END, type MetricsStore } from '../metrics-store/metrics-store.ts';
import { analyse, type AnalysisOptions, type ExperimentResults, type MetricComparison, type MetricVariant } from './analysis.ts';
import { formatInterval, planBuckets } from './buckets.ts';
import { experimentMetrics, resolveMetric, type MetricType, type ResolvedMetric } from './experiment-metrics.ts';

/** Where experiment and metric definitions come from (the experiment-service's snapshot). */
export interface Definitions {
  experiment(key: string): Experiment | undefined;
  metrics(): Readonly<Record<string, unknown>>;
}

export interface TimeseriesPoint {
  ts: string;
  variants: MetricVariant[];
  comparisons: MetricComparison[];
}

export interface Timeseries {
  experiment: string;
  metric: string;
  type: MetricType;
  interval: string;
  baseline: string | null;
  points: TimeseriesPoint[];
}

/** GET /v1/results/:experiment and its timeseries (SPEC §4), from the store and the definitions. */
export class ResultsService {
  private readonly inFlight = new Map<string, Promise<ExperimentResults>>();

  constructor(
    private readonly store: MetricsStore,
    private readonly definitions: Definitions,
    private readonly options: AnalysisOptions,
    private readonly logger: Logger,
  ) {}

  /** Concurrent requests for the same experiment share one computation. */
  results(key: string): Promise<ExperimentResults> {
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.compute(key).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return pending;
  }

  private experiment(key: string): Experiment {
    const experiment = this.definitions.experiment(key);
    if (!experiment) throw createError('BUNRYU_NOT_FOUND', `No experiment ${key}`);
    return experiment;
  }

  private async compute(key: string): Promise<ExperimentResults> {
    const experiment = this.experiment(key);
    const { metrics, unknown } = experimentMetrics(experiment, this.definitions.metrics());
    if (unknown.length > 0) this.logger.warn({ experiment: key, metrics: unknown }, 'metrics not in the catalogue are left out of the results');
    const span = await this.store.span(key);
    const plan = span ? planBuckets(span) : undefined;
    const rows = plan ? await this.store.series({ experiment: key, metrics: metrics.map((m) => m.spec), ends: plan.ends }) : [];
    const points = analyse(experiment, metrics, rows, plan?.ends.length ?? 1, this.options);
    const last = points.at(-1)!;
    return {
      experiment: key,
      updatedAt: last.lastTs > 0 ? new Date(last.lastTs).toISOString() : null,
      srm: (await this.srmSinceRamp(experiment, span)) ?? last.srm,
      variants: last.variants,
      metrics: last.metrics,
    };
  }

  /**
   * After a ramp, units first exposed before it were split by the old weights: checking every
   * unit against the new weights would flag a mismatch that is only the ramp's history. The check
   * then counts the units first exposed since the weights changed.
   */
  private async srmSinceRamp(experiment: Experiment, span: { firstTs: number } | null): Promise<ExperimentResults['srm'] | undefined> {
    const since = experiment.weightsChangedAt ? Date.parse(experiment.weightsChangedAt) : NaN;
    if (!span || !(since > span.firstTs)) return undefined;
    const rows = await this.store.series({ experiment: experiment.key, metrics: [], ends: [since, OPEN_END] });
    const units = (bucket: number, variant: string) => rows.find((r) => r.bucket === bucket && r.variant === variant)?.units ?? 0;
    const counts = experiment.variants.map((v) => units(1, v.key) - units(0, v.key));
    const s = srm(counts, experiment.variants.map((v) => v.weight));
    return { pValue: Number.isFinite(s.pValue) ? s.pValue : null, mismatch: s.mismatch };
  }

  async timeseries(key: string, metricKey: string | undefined, step: number | undefined): Promise<Timeseries> {
    const experiment = this.experiment(key);
    const chosen = metricKey ?? experiment.metrics.primary ?? 'error_rate';
    const metric: ResolvedMetric | undefined = resolveMetric(chosen, this.definitions.metrics());
    if (!metric) throw createError('BUNRYU_NOT_FOUND', `No metric ${chosen}`);
    const span = await this.store.span(key);
    const plan = span ? planBuckets(span, step) : undefined;
    const rows = plan ? await this.store.series({ experiment: key, metrics: [metric.spec], ends: plan.ends }) : [];
    const points = plan ? analyse(experiment, [metric], rows, plan.ends.length, this.options) : [];
    return {
      experiment: key,
      metric: metric.key,
      type: metric.type,
      interval: formatInterval(plan?.step ?? step ?? 3_600_000),
      baseline: experiment.variants[0]?.key ?? null,
      // The last bucket is open-ended: its point is labelled with the newest data it holds when that is later.
      points: points.map((p, k) => ({
        ts: new Date(k === points.length - 1 ? Math.max(plan!.labels[k]!, p.lastTs) : plan!.labels[k]!).toISOString(),
        variants: p.metrics[0]!.variants,
        comparisons: p.metrics[0]!.comparisons,
      })),
    };
  }
}
