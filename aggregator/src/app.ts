import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram } from 'prom-client';
import { z } from 'zod';
import { Key, parseOrThrow } from '@bunryu/core';
import { createHttpServer } from '@bunryu/platform';
import { authenticatorFor, requireRole } from '@bunryu/platform/auth';
import type { Config } from './config.ts';
import type { Definitions } from './results/results-service.ts';
import type { Ingester } from './ingest/ingester.ts';
import type { Logger, LogSink } from '@bunryu/platform';
import type { MetricsStore } from './metrics-store/metrics-store.ts';
import { parseInterval } from './results/buckets.ts';
import { ResultsService } from './results/results-service.ts';
import { AGREEMENT_PAIRS, shadowResults } from './results/shadow.ts';

/** What the app needs from the composition root. */
export interface AppDeps {
  logger: LogSink;
  store: MetricsStore;
  ingester: Ingester;
  definitions: Definitions & { check(): void };
}

const Params = z.object({ experiment: Key });
const RouteParams = z.object({ route: Key });
/** `?metrics=error_rate,latency_ms`: only these metrics (the autopilot's serving guardrails, cheap to answer). */
const ResultsQuery = z.object({
  metrics: z
    .string()
    .max(1024)
    .transform((s) => s.split(','))
    .pipe(z.array(Key).min(1).max(64))
    .optional(),
});
/** `?minutes=60`: the window volume is measured over. */
const VolumeQuery = z.object({ minutes: z.coerce.number().int().min(1).max(7 * 24 * 60).default(60) });
const TimeseriesQuery = z.object({ metric: Key.optional(), interval: z.string().max(16).optional() });

export async function buildApp(config: Readonly<Config>, deps: AppDeps): Promise<FastifyInstance> {
  const { store, ingester, definitions } = deps;
  const app = createHttpServer({
    service: 'aggregator',
    logLevel: config.LOG_LEVEL,
    readiness: [
      { name: 'clickhouse', check: () => store.ping() },
      { name: 'event-log', check: async () => void (await ingester.lag()) },
      { name: 'definitions', check: () => definitions.check() },
    ],
  });
  deps.logger.use(app.log as unknown as Logger);
  registerMetrics(app, ingester);

  const results = new ResultsService(
    store,
    definitions,
    { sequentialMinUnits: config.AGGREGATOR_SEQUENTIAL_MIN_UNITS, servedMaxAgeMs: config.AGGREGATOR_SERVED_MAX_AGE_MS, phaseSettleMs: config.AGGREGATOR_PHASE_SETTLE_MS },
    deps.logger,
  );
  app.addHook('onClose', async () => results.close());

  // Results are business data: a viewer token of the experiment-service's roles reads them.
  const viewer = { onRequest: requireRole(authenticatorFor(config), 'viewer') };

  app.get('/v1/results/:experiment', viewer, async (request) => {
    const { experiment } = parseOrThrow(Params, request.params);
    const query = parseOrThrow(ResultsQuery, request.query);
    return results.results(experiment, query.metrics);
  });

  app.get('/v1/results/:experiment/slices', viewer, async (request) => {
    const { experiment } = parseOrThrow(Params, request.params);
    return results.slices(experiment);
  });

  app.get('/v1/results/:experiment/as-served', viewer, async (request) => {
    const { experiment } = parseOrThrow(Params, request.params);
    return results.asServed(experiment);
  });

  // SPEC §13: a route's shadow against what its clients were answered.
  app.get('/v1/shadow/:route', viewer, async (request) => {
    const { route } = parseOrThrow(RouteParams, request.params);
    return shadowResults(route, await store.shadow(route, AGREEMENT_PAIRS));
  });

  app.get('/v1/results/:experiment/timeseries', viewer, async (request) => {
    const { experiment } = parseOrThrow(Params, request.params);
    const query = parseOrThrow(TimeseriesQuery, request.query);
    return results.timeseries(experiment, query.metric, query.interval === undefined ? undefined : parseInterval(query.interval));
  });

  /**
   * SPEC §16's live volume per behaviour event type: events per minute over the window (by event
   * time), when one was last seen, and the share a `warn` gateway marked as undeclared or invalid
   * (a `strict` gateway rejects those, so they never get here).
   */
  app.get('/v1/events/volume', async (request) => {
    const { minutes } = parseOrThrow(VolumeQuery, request.query);
    const to = Date.now();
    const from = to - minutes * 60_000;
    const rows = await store.eventVolume(from);
    return {
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      minutes,
      types: rows.map((r) => ({
        type: r.type,
        events: r.events,
        perMinute: r.events / minutes,
        lastSeen: Number.isFinite(r.lastTs) ? new Date(r.lastTs).toISOString() : null,
        undeclared: r.undeclared,
        invalid: r.invalid,
        shareInvalid: r.events > 0 ? (r.undeclared + r.invalid) / r.events : null,
      })),
    };
  });

  return app;
}

/** Ingestion figures on /metrics: rows in, records rejected, failed inserts, insert latency, consumer lag. */
function registerMetrics(app: FastifyInstance, ingester: Ingester): void {
  const registers = [app.metrics];
  const { stats } = ingester;
  new Counter({
    name: 'bunryu_aggregator_events_ingested_total',
    help: 'Events inserted into the metrics store (a redelivered batch counts again)',
    registers,
    collect() {
      this.reset();
      this.inc(stats.ingested);
    },
  });
  new Counter({
    name: 'bunryu_aggregator_records_rejected_total',
    help: 'Event log records skipped because they are not valid events',
    registers,
    collect() {
      this.reset();
      this.inc(stats.rejected);
    },
  });
  new Counter({
    name: 'bunryu_aggregator_insert_failures_total',
    help: 'Batches whose insert failed (the log delivers them again)',
    registers,
    collect() {
      this.reset();
      this.inc(stats.failedBatches);
    },
  });
  const insertSeconds = new Histogram({
    name: 'bunryu_aggregator_insert_duration_seconds',
    help: 'Time to insert one batch into the metrics store',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  ingester.observe((seconds) => insertSeconds.observe(seconds));
  new Gauge({
    name: 'bunryu_aggregator_consumer_lag',
    help: 'Event log records not yet committed by the aggregator group',
    registers,
    async collect() {
      try {
        this.set(await ingester.lag());
      } catch {
        this.set(NaN);
      }
    },
  });
}
