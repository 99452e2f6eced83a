import { Experiment, ExperimentDefinition, ExperimentStatus, PromoteRequest, RampRequest, parseOrThrow } from '@bunryu/core';
import type { Principal } from '@bunryu/platform/auth';
import type { ExperimentManager, IfMatch } from '../experiments/experiment-manager.ts';
import { etagOf } from './if-match.ts';
import { AuditLog, ExperimentList, NoBody } from '../openapi/schemas.ts';
import { withChanges } from './audit-view.ts';
import { endpoint, type Endpoint, type EndpointContext } from './endpoint.ts';

export function experimentEndpoints(experiments: ExperimentManager): Endpoint<never>[] {
  /** Answers with the experiment and its version as ETag (the If-Match of the next change). */
  const answer = <B>(ctx: EndpointContext<B>, e: Experiment): Experiment => {
    void ctx.reply.header('etag', etagOf(e.version));
    return e;
  };
  const action = (
    name: 'start' | 'pause' | 'archive' | 'rollback',
    role: 'editor' | 'releaser',
    summary: string,
    run: (key: string, ifMatch: IfMatch, actor: Principal) => Promise<Experiment>,
  ) =>
    endpoint({
      method: 'POST',
      url: `/v1/experiments/:key/${name}`,
      operationId: `${name}Experiment`,
      summary,
      role,
      body: NoBody,
      response: Experiment,
      ifMatch: 'optional',
      errors: ['BUNRYU_NOT_FOUND', 'BUNRYU_INVALID_TRANSITION', 'BUNRYU_VERSION_MISMATCH', ...(name === 'start' ? (['BUNRYU_LAYER_FULL', 'BUNRYU_PARAM_CONFLICT'] as const) : [])],
      handler: async (ctx) => answer(ctx, await run(ctx.params.key!, ctx.ifMatch, ctx.principal!)),
    });

  return [
    endpoint({
      method: 'POST',
      url: '/v1/experiments',
      operationId: 'createExperiment',
      summary: 'Create an experiment (status draft). Without `allocation`, the first free range of `trafficPercent` in its layer is allocated.',
      role: 'editor',
      body: ExperimentDefinition,
      response: Experiment,
      status: 201,
      errors: ['BUNRYU_ALREADY_EXISTS', 'BUNRYU_LAYER_FULL'],
      handler: async (ctx) => {
        const e = await experiments.create(ctx.body, ctx.principal!);
        void ctx.reply.header('location', `/v1/experiments/${e.key}`);
        return answer(ctx, e);
      },
    }),
    endpoint({
      method: 'GET',
      url: '/v1/experiments',
      operationId: 'listExperiments',
      summary: 'List experiments, sorted by key',
      role: 'viewer',
      response: ExperimentList,
      query: {
        status: { description: 'Only experiments with this status', enum: ExperimentStatus.options },
        route: { description: 'Only experiments on this route' },
      },
      handler: async ({ query }) => {
        const status = query.status === undefined ? undefined : parseOrThrow(ExperimentStatus, query.status, 'status');
        return experiments.list({ status, route: query.route });
      },
    }),
    endpoint({
      method: 'GET',
      url: '/v1/experiments/:key',
      operationId: 'getExperiment',
      summary: 'One experiment; its ETag is its version. If-None-Match with the current version answers 304.',
      role: 'viewer',
      response: Experiment,
      errors: ['BUNRYU_NOT_FOUND'],
      alsoAnswers: { 304: 'Not modified' },
      handler: async (ctx) => {
        const e = await experiments.get(ctx.params.key!);
        if (ctx.request.headers['if-none-match'] === etagOf(e.version)) return ctx.reply.code(304).header('etag', etagOf(e.version)).send();
        return answer(ctx, e);
      },
    }),
    endpoint({
      method: 'PUT',
      url: '/v1/experiments/:key',
      operationId: 'updateExperiment',
      summary: 'Replace the definition of a draft, running or paused experiment (If-Match: <version> required)',
      role: 'editor',
      body: ExperimentDefinition,
      response: Experiment,
      ifMatch: 'required',
      errors: ['BUNRYU_NOT_FOUND', 'BUNRYU_INVALID_TRANSITION', 'BUNRYU_LAYER_FULL', 'BUNRYU_PARAM_CONFLICT', 'BUNRYU_VERSION_MISMATCH', 'BUNRYU_PRECONDITION_REQUIRED'],
      handler: async (ctx) => answer(ctx, await experiments.update(ctx.params.key!, ctx.body, ctx.ifMatch, ctx.principal!)),
    }),
    action('start', 'editor', 'Start (draft or paused → running): the route must exist, the range must be free and no running experiment of another layer on the route may set the same parameter', (k, m, a) => experiments.start(k, m, a)),
    action('pause', 'editor', 'Pause (running → paused): stops affecting traffic at once, keeps its range', (k, m, a) => experiments.pause(k, m, a)),
    action('archive', 'editor', 'Archive (draft, paused, released or rolled back → archived)', (k, m, a) => experiments.archive(k, m, a)),
    endpoint({
      method: 'POST',
      url: '/v1/experiments/:key/ramp',
      operationId: 'rampExperiment',
      summary: 'Set variant weights; variants not named keep theirs, and all must sum to 100. Ranges are laid out in variant order, so moving weight only moves units between the variants concerned.',
      role: 'releaser',
      body: RampRequest,
      response: Experiment,
      ifMatch: 'optional',
      errors: ['BUNRYU_NOT_FOUND', 'BUNRYU_INVALID_TRANSITION', 'BUNRYU_VERSION_MISMATCH'],
      handler: async (ctx) => answer(ctx, await experiments.ramp(ctx.params.key!, ctx.body.weights, ctx.ifMatch, ctx.principal!)),
    }),
    endpoint({
      method: 'POST',
      url: '/v1/experiments/:key/promote',
      operationId: 'promoteExperiment',
      summary: "Release a variant (running or paused → released): its params apply to all of the route's matching traffic",
      role: 'releaser',
      body: PromoteRequest,
      response: Experiment,
      ifMatch: 'optional',
      errors: ['BUNRYU_NOT_FOUND', 'BUNRYU_INVALID_TRANSITION', 'BUNRYU_VERSION_MISMATCH'],
      handler: async (ctx) => answer(ctx, await experiments.promote(ctx.params.key!, ctx.body.variant, ctx.ifMatch, ctx.principal!)),
    }),
    action('rollback', 'releaser', 'Roll back (running, paused or released → rolled_back): the experiment stops affecting traffic at once', (k, m, a) =>
      experiments.rollback(k, m, a),
    ),
    endpoint({
      method: 'GET',
      url: '/v1/experiments/:key/history',
      operationId: 'getExperimentHistory',
      summary: 'Audit log of the experiment, oldest first: who, when, what changed, before and after',
      role: 'viewer',
      response: AuditLog,
      errors: ['BUNRYU_NOT_FOUND'],
      handler: async ({ params }) => (await experiments.history(params.key!)).map(withChanges),
    }),
  ] as Endpoint<never>[];
}
