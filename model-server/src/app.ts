import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, type Registry } from 'prom-client';
import { createError } from '@bunryu/core';
import { createHttpServer } from '@bunryu/platform';
import type { Config } from './config.ts';
import type { Deps } from './compose.ts';
import { parseAbParams } from './predict/ab-params.ts';
import { predict } from './predict/predictor.ts';

export async function buildApp(config: Readonly<Config>, deps: Deps): Promise<FastifyInstance> {
  const { registry } = deps;
  const app = createHttpServer({
    service: 'model-server',
    logLevel: config.LOG_LEVEL,
    readiness: [
      {
        name: 'models',
        check: () => {
          const ready = [...registry.generation.models.values()].some((m) => !m.error && [...m.versions.values()].some((v) => v.status === 'ready'));
          if (!ready) throw new Error(`no model version is loaded from ${registry.dir}`);
        },
      },
    ],
  });
  registry.useLogger(app.log);

  const predictions = hotPathCounter({
    name: 'bunryu_model_predict_requests_total',
    help: 'Predict requests answered, by model and served version',
    registers: [app.metrics],
  });
  const fallbacks = new Counter({
    name: 'bunryu_model_fallbacks_total',
    help: 'Requests where a version could not answer and the fallback version did',
    labelNames: ['model', 'from', 'to'],
    registers: [app.metrics],
  });
  const reloads = new Counter({
    name: 'bunryu_model_reloads_total',
    help: 'Loads of the model directory, by result',
    labelNames: ['result'],
    registers: [app.metrics],
  });
  new Gauge({
    name: 'bunryu_model_versions',
    help: 'Model versions in the loaded directory, by status',
    labelNames: ['status'],
    registers: [app.metrics],
    collect() {
      const counts = { ready: 0, failed: 0 };
      for (const m of registry.generation.models.values()) for (const v of m.versions.values()) counts[v.status]++;
      this.set({ status: 'ready' }, counts.ready);
      this.set({ status: 'failed' }, counts.failed);
    },
  });
  registry.onReload((r) => reloads.inc({ result: r instanceof Error ? 'error' : 'ok' }));

  app.get('/v1/models', async () => registry.describe());

  app.post('/v1/models/reload', async () => {
    try {
      return await registry.reload();
    } catch (err) {
      throw createError('BUNRYU_NOT_READY', `reload failed, the previous models keep serving: ${(err as Error).message}`);
    }
  });

  app.post<{ Params: { name: string } }>('/v1/models/:name/predict', async (request, reply) => {
    const params = parseAbParams(request.headers['x-ab-params']);
    const generation = registry.acquire();
    try {
      const result = await predict(generation, request.params.name, params, request.body);
      predictions(result.model, result.version);
      void reply.header('x-model-version', result.version);
      if (result.blend) {
        const rest = Number((1 - result.blend.weight).toPrecision(12));
        void reply.header('x-model-blend', `${result.blend.weight}*${result.version}+${rest}*${result.blend.with}`);
      }
      if (result.fallback) {
        void reply.header('x-model-fallback', 'true');
        for (const f of result.fallback) {
          fallbacks.inc({ model: result.model, from: f.from, to: f.to });
          request.log.warn({ model: result.model, ...f }, 'model version fell back');
        }
      }
      return result;
    } finally {
      registry.release(generation);
    }
  });

  return app;
}

/**
 * A counter by model and version whose hot path is a Map increment: the counts reach prom-client
 * when /metrics is scraped, because prom-client hashes and validates the label object on every
 * `inc` (a few µs, measurable against a predict that costs tens of µs).
 */
function hotPathCounter(opts: { name: string; help: string; registers: Registry[] }): (model: string, version: string) => void {
  const pending = new Map<string, { labels: { model: string; version: string }; n: number }>();
  new Counter({
    ...opts,
    labelNames: ['model', 'version'],
    collect() {
      for (const p of pending.values()) {
        if (p.n === 0) continue;
        this.inc(p.labels, p.n);
        p.n = 0;
      }
    },
  });
  return (model, version) => {
    const key = `${model}\u0000${version}`;
    const p = pending.get(key);
    if (p) p.n++;
    else pending.set(key, { labels: { model, version }, n: 1 });
  };
}
