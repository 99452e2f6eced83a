import { Experiment, createError } from '@bunryu/core';
import type { Autopilot } from '../autopilot/autopilot.ts';
import { AUTOPILOT, subjectOf, type ExperimentManager } from '../experiments/experiment-manager.ts';
import { NoBody, RolloutView } from '../openapi/schemas.ts';
import { etagOf } from './if-match.ts';
import { endpoint, type Endpoint } from './endpoint.ts';

/** A guarded rollout as the autopilot sees it (SPEC §10): GET …/rollout, and handing it to a person and back. */
export function rolloutEndpoints(experiments: ExperimentManager, autopilot: Autopilot | null): Endpoint<never>[] {
  const handOver = (mode: 'active' | 'paused', name: 'pause' | 'resume', operationId: string, summary: string) =>
    endpoint({
      method: 'POST',
      url: `/v1/experiments/:key/rollout/${name}`,
      operationId,
      summary,
      role: 'releaser',
      body: NoBody,
      response: Experiment,
      ifMatch: 'optional',
      errors: ['BUNRYU_NOT_FOUND', 'BUNRYU_INVALID_TRANSITION', 'BUNRYU_VERSION_MISMATCH'],
      handler: async (ctx) => {
        const e = await experiments.setAutopilot(ctx.params.key!, mode, ctx.ifMatch, ctx.principal!);
        void ctx.reply.header('etag', etagOf(e.version));
        return e;
      },
    });

  return [
    endpoint({
      method: 'GET',
      url: '/v1/experiments/:key/rollout',
      operationId: 'getRollout',
      summary: "The experiment's guarded rollout: plan, current step, each guardrail's estimate, bound and verdict, and the autopilot's decisions",
      role: 'viewer',
      response: RolloutView,
      errors: ['BUNRYU_NOT_FOUND'],
      handler: async ({ params }) => {
        const e = await experiments.get(params.key!);
        if (!e.rollout) throw createError('BUNRYU_NOT_FOUND', `Experiment ${e.key} has no rollout plan`, { field: 'rollout' });
        const evaluation = autopilot?.evaluation(e.key);
        const history = await experiments.history(e.key);
        return {
          experiment: e.key,
          status: e.status,
          plan: e.rollout,
          state: e.rolloutState ?? { step: 0, stepStartedAt: e.startedAt ?? e.createdAt, autopilot: 'active' },
          currentWeights: Object.fromEntries(e.variants.map((v) => [v.key, v.weight])),
          evaluatedAt: evaluation?.evaluatedAt ?? null,
          guardrails: evaluation?.guardrails ?? [],
          lastDecision: evaluation?.lastDecision ?? null,
          decisions: history.filter((h) => h.subject === subjectOf(e.key) && h.actor.name === AUTOPILOT.name && h.actor.role === AUTOPILOT.role).reverse(),
        };
      },
    }),
    handOver('paused', 'pause', 'pauseAutopilot', 'A person takes over the guarded rollout: the autopilot stops acting on it (the experiment keeps running)'),
    handOver('active', 'resume', 'resumeAutopilot', 'Hand the guarded rollout back to the autopilot'),
  ] as Endpoint<never>[];
}
