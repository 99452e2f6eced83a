import { createError, experimentPhases, sequentialSignPValue, signTest, type Experiment, type Phase } from '@bunryu/core';
import type { Logger } from '@bunryu/platform/log';
import { OPEN_END, type ExposureFacts, type InterleavingFacts, type MetricsStore, type SeriesQuery } from '../metrics-store/metrics-store.ts';
import { analyse, correctTogether, standardErrorOf, type AnalysisOptions, type AnalysisPoint, type ExperimentResults, type MetricComparison, type MetricResult, type MetricVariant, type VariantCounts } from './analysis.ts';
import { formatInterval, planBuckets } from './buckets.ts';
import { correctedMetrics, experimentMetrics, resolveMetric, type MetricType, type ResolvedMetric } from './experiment-metrics.ts';

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

/** One value of a sliced attribute: its units' results, computed as the experiment's. */
export interface SliceResult {
  attribute: string;
  value: string;
  srm: ExperimentResults['srm'];
  variants: VariantCounts[];
  metrics: MetricResult[];
}

/** GET /v1/results/:experiment/slices (SPEC §11). */
export interface ExperimentSlices {
  experiment: string;
  /** The declared `analysis.sliceBy`, in order; no slices when it is empty. */
  attributes: string[];
  /** Every comparison below is corrected with every other (all attributes, values, metrics, treatments). */
  correction: { method: 'holm' | 'bh'; tests: number };
  slices: SliceResult[];
}

/** GET /v1/results/:experiment/as-served (SPEC §11): beside the intention-to-treat results, never instead. */
export interface AsServedResults extends Pick<ExperimentResults, 'experiment' | 'srm' | 'variants' | 'metrics'> {
  /** Always true: leaving out the units a fallback answered selects on something the variant may cause. */
  biased: true;
  basis: string;
}

/** The event an interleaving experiment credits: its primary metric's, when that counts one event type; else `click`. */
function clickEvent(experiment: Experiment, catalogue: Readonly<Record<string, unknown>>): string {
  const spec = experiment.metrics.primary ? resolveMetric(experiment.metrics.primary, catalogue)?.spec : undefined;
  return spec && (spec.kind === 'proportion' || spec.kind === 'mean') ? spec.event : 'click';
}

function interleavingFigures(pair: readonly [string, string], click: string, f: InterleavingFacts): NonNullable<ExperimentResults['interleaving']> {
  const [a, b] = [f.preferred[pair[0]] ?? 0, f.preferred[pair[1]] ?? 0];
  return {
    click,
    requests: f.requests,
    units: f.units,
    clickedUnits: f.clickedUnits,
    variants: pair.map((key) => ({ key, preferred: f.preferred[key] ?? 0 })),
    ties: f.clickedUnits - a - b,
    preference: a + b > 0 ? b / (a + b) : null,
    pValue: signTest(b, a),
    sequentialPValue: sequentialSignPValue(b, a),
  };
}

/** Values kept per sliced attribute; units with any other value are one `(other)` slice. */
export const SLICE_VALUES = 20;

/** The metrics of `analysed` named in `only`, in the analysed order; an unknown key is a 400 naming `metrics`. */
function chosenMetrics(analysed: readonly ResolvedMetric[], only: readonly string[]): ResolvedMetric[] {
  const missing = only.filter((k) => !analysed.some((m) => m.key === k));
  if (missing.length > 0) {
    const message = `not analysed for this experiment: ${missing.join(', ')} (it analyses ${analysed.map((m) => m.key).join(', ')})`;
    throw createError('BUNRYU_VALIDATION', `metrics: ${message}`, { fields: [{ path: 'metrics', message }] });
  }
  return analysed.filter((m) => only.includes(m.key));
}

/** CUPED's pre-exposure window (SPEC §11: `analysis.preWindowDays`, 14 by default); 0 turns CUPED off. */
const preWindowMs = (e: Experiment): number => (e.analysis?.cuped === false ? 0 : (e.analysis?.preWindowDays ?? 14) * 86_400_000);

function phaseCounts(phases: readonly Phase[], point: AnalysisPoint): ExperimentResults['phases'] {
  return phases.map((p, i) => ({
    startedAt: new Date(p.startedAt).toISOString(),
    weights: p.weights,
    units: point.phases[i]?.units ?? {},
    moved: point.phases[i]?.moved ?? 0,
  }));
}

function servedFigures(order: readonly string[], facts: readonly ExposureFacts[]): Pick<ExperimentResults, 'served' | 'latencyPercentiles'> {
  const of = (key: string) => facts.find((f) => f.variant === key);
  const share = (n: number, of: number) => (of > 0 ? n / of : null);
  return {
    served: order.map((key) => {
      const f = of(key);
      const n = f?.exposures ?? 0;
      const route = f?.routeFallback ?? 0;
      const model = f?.modelFallback ?? 0;
      return { key, exposures: n, asAssigned: share(n - route - model, n), routeFallback: share(route, n), modelFallback: share(model, n) };
    }),
    latencyPercentiles: order.map((key) => ({ key, n: of(key)?.latency.n ?? 0, percentiles: of(key)?.latency.percentiles ?? [] })),
  };
}

/** How long a restricted answer is kept fresh after it was last asked for. */
const WATCH_MS = 30_000;

interface Served {
  value: ExperimentResults;
  /** When the computation of `value` started: it holds every event inserted before then. */
  startedAt: number;
  askedAt: number;
  timer?: NodeJS.Timeout;
}

export interface ResultsOptions extends AnalysisOptions {
  /** The oldest restricted answer (`?metrics=`) served as is (ms since its computation started). */
  servedMaxAgeMs: number;
  /** How long after each phase's start first exposures are left out (`SeriesQuery.phaseSettleMs`); 0 by default. */
  phaseSettleMs?: number;
}

/** GET /v1/results/:experiment and its timeseries (SPEC §4), from the store and the definitions. */
export class ResultsService {
  private readonly inFlight = new Map<string, Promise<ExperimentResults>>();
  private readonly served = new Map<string, Served>();

  constructor(
    private readonly store: MetricsStore,
    private readonly definitions: Definitions,
    private readonly options: ResultsOptions,
    private readonly logger: Logger,
  ) {}

  /**
   * The experiment's results (SPEC §4). `only` restricts the metrics computed to those keys (a
   * key the experiment does not analyse is a 400 naming `metrics`): the autopilot asks for the
   * serving guardrails every few seconds and must be answered at once whatever the experiment's
   * size. Such an answer is kept and refreshed in the background while it is asked for (within
   * WATCH_MS); one started at most `servedMaxAgeMs` ago is served as is, which keeps it inside
   * SPEC §4's freshness bound (every event accepted more than 5 s ago).
   */
  results(key: string, only?: readonly string[]): Promise<ExperimentResults> {
    if (!only) return this.shared(key, key);
    const id = `${key}?${[...new Set(only)].sort().join(',')}`;
    const now = Date.now();
    const kept = this.served.get(id);
    if (kept && now - kept.startedAt <= this.options.servedMaxAgeMs) {
      kept.askedAt = now;
      return Promise.resolve(kept.value);
    }
    return this.shared(id, key, only).then((value) => {
      this.keep(id, key, only, value, now, Date.now() - now);
      return value;
    });
  }

  /** The phases as the store takes them (ADR 0009): where those after the first start, and how long each settles. */
  private phasing(phases: readonly Phase[]): Pick<SeriesQuery, 'phaseStarts' | 'phaseSettleMs'> {
    return { phaseStarts: phases.slice(1).map((p) => p.startedAt), phaseSettleMs: this.options.phaseSettleMs ?? 0 };
  }

  /** Stops the background refreshes. */
  close(): void {
    for (const s of this.served.values()) clearTimeout(s.timer);
    this.served.clear();
  }

  /** Concurrent requests for the same answer share one computation. */
  private shared(id: string, key: string, only?: readonly string[]): Promise<ExperimentResults> {
    let pending = this.inFlight.get(id);
    if (!pending) {
      pending = this.compute(key, only).finally(() => this.inFlight.delete(id));
      this.inFlight.set(id, pending);
    }
    return pending;
  }

  /**
   * Keeps an answer and schedules its refresh: the next computation starts early enough to end
   * before the kept one is too old (at worst right after the last one, never two at a time).
   */
  private keep(id: string, key: string, only: readonly string[], value: ExperimentResults, startedAt: number, tookMs: number): void {
    const previous = this.served.get(id);
    clearTimeout(previous?.timer);
    const entry: Served = { value, startedAt, askedAt: previous?.askedAt ?? startedAt };
    this.served.set(id, entry);
    const delay = Math.max(this.options.servedMaxAgeMs - 2 * tookMs, tookMs) - (Date.now() - startedAt);
    entry.timer = setTimeout(() => {
      if (this.served.get(id) !== entry) return;
      if (Date.now() - entry.askedAt > WATCH_MS) return void this.served.delete(id);
      const started = Date.now();
      this.shared(id, key, only).then(
        (fresh) => this.served.get(id) === entry && this.keep(id, key, only, fresh, started, Date.now() - started),
        // The next request computes again and answers the error itself.
        () => this.served.get(id) === entry && this.served.delete(id),
      );
    }, Math.max(0, delay));
    entry.timer.unref();
  }

  private experiment(key: string): Experiment {
    const experiment = this.definitions.experiment(key);
    if (!experiment) throw createError('BUNRYU_NOT_FOUND', `No experiment ${key}`);
    return experiment;
  }

  private async compute(key: string, only?: readonly string[]): Promise<ExperimentResults> {
    const experiment = this.experiment(key);
    const analysed = experimentMetrics(experiment, this.definitions.metrics());
    if (analysed.unknown.length > 0 && !only) this.logger.warn({ experiment: key, metrics: analysed.unknown }, 'metrics not in the catalogue are left out of the results');
    const metrics = only ? chosenMetrics(analysed.metrics, only) : analysed.metrics;
    const phases = experimentPhases(experiment);
    const span = await this.store.span(key);
    const plan = span ? planBuckets(span) : undefined;
    // The serving guardrails' fast answer (`only`) skips what reads every exposure again.
    const pair = experiment.design === 'interleave' && !only && span ? ([experiment.variants[0]!.key, experiment.variants[1]!.key] as const) : undefined;
    const click = clickEvent(experiment, this.definitions.metrics());
    const [rows, facts, interleaved] = await Promise.all([
      plan ? this.store.series({ experiment: key, metrics: metrics.map((m) => m.spec), ends: plan.ends, ...this.phasing(phases), preWindowMs: preWindowMs(experiment) }) : [],
      !only && span ? this.store.exposureFacts(key) : undefined,
      pair ? this.store.interleaving(key, pair, click) : undefined,
    ]);
    const points = analyse(experiment, metrics, rows, plan?.ends.length ?? 1, this.options, phases);
    const last = points.at(-1)!;
    const results: ExperimentResults = {
      experiment: key,
      updatedAt: last.lastTs > 0 ? new Date(last.lastTs).toISOString() : null,
      srm: last.srm,
      variants: last.variants,
      metrics: last.metrics,
      ...(phases.length > 1 ? { phases: phaseCounts(phases, last) } : {}),
    };
    if (facts) Object.assign(results, servedFigures(last.variants.map((v) => v.key), facts));
    if (pair && interleaved) results.interleaving = interleavingFigures(pair, click, interleaved);
    return results;
  }

  /**
   * Results per value of each declared attribute. Only the metrics decided on (primary and
   * secondary, or all but the guardrails) are sliced, and their comparisons are corrected as one
   * family across every slice: the experiment's correction, or Holm when it has none, since
   * reading many slices is exactly where false positives come from. Slices read the per-unit sets
   * directly, so they cost one direct query per attribute; they are asked for, never polled.
   */
  async slices(key: string): Promise<ExperimentSlices> {
    const experiment = this.experiment(key);
    const attributes = experiment.analysis?.sliceBy ?? [];
    const analysed = experimentMetrics(experiment, this.definitions.metrics()).metrics;
    const family = correctedMetrics(experiment);
    const guardrails = new Set(experiment.metrics.guardrails);
    const metrics = family.size > 0 ? analysed.filter((m) => family.has(m.key)) : analysed.filter((m) => !guardrails.has(m.key));
    const phases = experimentPhases(experiment);
    // Each slice is its own analysis; the correction runs once, over all of them, below.
    const uncorrected = { ...experiment, analysis: { ...experiment.analysis, correction: 'none' as const } };
    const slices: SliceResult[] = [];
    const span = attributes.length > 0 && metrics.length > 0 ? await this.store.span(key) : null;
    if (span) {
      for (const attribute of attributes) {
        const sliced = await this.store.slices({
          experiment: key,
          metrics: metrics.map((m) => m.spec),
          ends: [OPEN_END],
          ...this.phasing(phases),
          preWindowMs: preWindowMs(experiment),
          slice: { attribute, top: SLICE_VALUES },
        });
        for (const { value, rows } of sliced) {
          const [point] = analyse(uncorrected, metrics, rows, 1, this.options, phases);
          slices.push({ attribute, value, srm: point!.srm, variants: point!.variants, metrics: point!.metrics });
        }
      }
    }
    const method = experiment.analysis?.correction === 'bh' ? 'bh' : 'holm';
    const tests = slices.flatMap((s) => s.metrics.flatMap((m) => m.comparisons));
    correctTogether(method, tests, standardErrorOf);
    return { experiment: key, attributes: [...attributes], correction: { method, tests: tests.filter((c) => c.pValue !== null).length }, slices };
  }

  /**
   * The results over only the units whose every exposure was answered by their assigned variant
   * (SPEC §11 "as served"). Fallbacks are not random (a model that errors on hard requests sheds
   * exactly those units), so these figures are biased and only shown beside the headline ones.
   * One direct query: asked for, not polled.
   */
  async asServed(key: string): Promise<AsServedResults> {
    const experiment = this.experiment(key);
    const metrics = experimentMetrics(experiment, this.definitions.metrics()).metrics;
    const phases = experimentPhases(experiment);
    const span = await this.store.span(key);
    const rows = span
      ? await this.store.series({ experiment: key, metrics: metrics.map((m) => m.spec), ends: [OPEN_END], ...this.phasing(phases), preWindowMs: preWindowMs(experiment), servedAsAssigned: true })
      : [];
    const [point] = analyse(experiment, metrics, rows, 1, this.options, phases);
    return {
      experiment: key,
      biased: true,
      basis: 'units whose every exposure was answered by the variant they were assigned (no route or model fallback)',
      srm: point!.srm,
      variants: point!.variants,
      metrics: point!.metrics,
    };
  }

  async timeseries(key: string, metricKey: string | undefined, step: number | undefined): Promise<Timeseries> {
    const experiment = this.experiment(key);
    const chosen = metricKey ?? experiment.metrics.primary ?? 'error_rate';
    const metric: ResolvedMetric | undefined = resolveMetric(chosen, this.definitions.metrics());
    if (!metric) throw createError('BUNRYU_NOT_FOUND', `No metric ${chosen}`);
    const span = await this.store.span(key);
    const plan = span ? planBuckets(span, step) : undefined;
    const phases = experimentPhases(experiment);
    const rows = plan ? await this.store.series({ experiment: key, metrics: [metric.spec], ends: plan.ends, ...this.phasing(phases), preWindowMs: preWindowMs(experiment) }) : [];
    const points = plan ? analyse(experiment, [metric], rows, plan.ends.length, this.options, phases) : [];
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
