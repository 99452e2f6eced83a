import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter, Gauge } from 'prom-client';
import { createError, errorBody } from '@bunryu/core';
import { createHttpServer, hotCounter } from '@bunryu/platform';
import type { Config } from './config.ts';
import type { Deps } from './compose.ts';
import { parseAbParams } from './predict/ab-params.ts';
import { FaultInjector } from './predict/fault-injector.ts';
import { predict, type Prediction } from './predict/predictor.ts';
import { readRankItems } from './predict/instances.ts';
import { authenticatorFor, requireRole } from '@bunryu/platform/auth';
import { usersOfVersion } from './lifecycle/in-use.ts';
import { registerVersionEndpoints } from './lifecycle/version-endpoints.ts';
import { VersionLifecycle } from './lifecycle/versions.ts';

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

  const predictions = hotCounter(app.metrics, 'bunryu_model_predict_requests_total', 'Predict requests answered, by model and served version', [
    'model',
    'version',
  ]);
  const fallbacks = new Counter({
    name: 'bunryu_model_fallbacks_total',
    help: 'Requests where a version could not answer and the fallback version did',
    labelNames: ['model', 'from', 'to'],
    registers: [app.metrics],
  });
  const faults = new FaultInjector();
  const injected = new Counter({
    name: 'bunryu_model_injected_failures_total',
    help: 'Answers failed on purpose by a version\'s `faults` in its model.json',
    labelNames: ['model', 'version'],
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
      const counts = { ready: 0, failed: 0, rejected: 0, retired: 0 };
      for (const m of registry.generation.models.values()) for (const v of m.versions.values()) counts[v.status]++;
      for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
    },
  });
  registry.onReload((r) => reloads.inc({ result: r instanceof Error ? 'error' : 'ok' }));

  const auth = authenticatorFor(config);
  app.get('/v1/models', async () => registry.describe());

  // A reload swaps what every route is served by: the same role as the experiment-service's admin actions.
  app.post('/v1/models/reload', { onRequest: requireRole(auth, 'admin') }, async () => {
    try {
      return await registry.reload();
    } catch (err) {
      throw createError('BUNRYU_NOT_READY', `reload failed, the previous models keep serving: ${(err as Error).message}`);
    }
  });

  /** Scores `body`'s instances with the version the params select, faults and headers included; null when an injected fault answered. */
  const scored = async (request: FastifyRequest<{ Params: { name: string } }>, reply: FastifyReply, body: unknown): Promise<Prediction | null> => {
    const params = parseAbParams(request.headers['x-ab-params']);
    const generation = registry.acquire();
    try {
      const result = await predict(generation, request.params.name, params, body);
      const fault = faults.next(result.model, result.version, generation.models.get(result.model)?.versions.get(result.version)?.metadata?.faults);
      if (fault.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
      if (fault.fail) {
        // Answered here rather than thrown: the error handler would log each one as a real failure.
        injected.inc({ model: result.model, version: result.version });
        void reply
          .code(500)
          .header('x-model-version', result.version)
          .send(errorBody('BUNRYU_INTERNAL', `model ${result.model} version ${result.version} failed by its injected faults (model.json "faults")`));
        return null;
      }
      predictions.inc([result.model, result.version]);
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
  };

  app.post<{ Params: { name: string } }>('/v1/models/:name/predict', async (request, reply) => (await scored(request, reply, request.body)) ?? reply);

  /**
   * A ranked list (SPEC §13): the candidate items of the body scored by the selected version and
   * answered best first with their ids, the form an interleaving experiment merges.
   */
  app.post<{ Params: { name: string } }>('/v1/models/:name/rank', async (request, reply) => {
    const items = readRankItems(request.body);
    const result = await scored(request, reply, { instances: items.map((it) => it.features) });
    if (result === null) return reply;
    const ranked = items.map((it, i) => ({ id: it.id, score: result.predictions[i]! })).sort((x, y) => y.score - x.score);
    const { predictions: _scores, ...rest } = result;
    return { ...rest, items: ranked };
  });

  await registerVersionEndpoints(app, {
    lifecycle: new VersionLifecycle(registry),
    auth,
    maxModelBytes: config.MODEL_MAX_BYTES,
    usersOf: (model, version) => usersOfVersion({ url: config.EXPERIMENT_SERVICE_URL, token: config.EXPERIMENT_SERVICE_TOKEN }, model, version),
  });

  return app;
}
