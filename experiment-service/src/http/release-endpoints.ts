import { Experiment, Key } from '@bunryu/core';
import type { ExperimentManager } from '../experiments/experiment-manager.ts';
import { ReleaseRequest, RouteHistoryView } from '../openapi/schemas.ts';
import { releaseDefinition } from '../releases/release-definition.ts';
import { routeHistory } from '../releases/route-history.ts';
import type { ExperimentStore } from '../store/experiment-store.ts';
import { etagOf } from './if-match.ts';
import { endpoint, type Endpoint } from './endpoint.ts';

/** Releases (SPEC §12, ADR 0011) and a route's history. */
export function releaseEndpoints(experiments: ExperimentManager, store: ExperimentStore): Endpoint<never>[] {
  return [
    endpoint({
      method: 'POST',
      url: '/v1/releases',
      operationId: 'startRelease',
      summary:
        "Create and start, in one change, a guarded rollout of `params` (treatment) against the route's current behaviour (control, empty params) under `plan` or the default plan; promoting it makes the winner's params the route's defaults",
      role: 'releaser',
      body: ReleaseRequest,
      response: Experiment,
      status: 201,
      errors: ['BUNRYU_ALREADY_EXISTS', 'BUNRYU_LAYER_FULL', 'BUNRYU_PARAM_CONFLICT'],
      handler: async (ctx) => {
        const def = releaseDefinition(ctx.body, await experiments.list());
        const e = await experiments.startRelease(def, ctx.principal!);
        void ctx.reply.header('location', `/v1/experiments/${e.key}`).header('etag', etagOf(e.version));
        return e;
      },
    }),
    endpoint({
      method: 'GET',
      url: '/v1/routes/:route/history',
      operationId: 'getRouteHistory',
      summary:
        'What the route served and who or what decided, one entry per config version, oldest first: its defaults and its experiments\' starts, ramps, promotions and rollbacks (the autopilot\'s with their evidence), each with what served afterwards',
      role: 'viewer',
      params: { route: Key },
      response: RouteHistoryView,
      errors: ['BUNRYU_NOT_FOUND'],
      handler: ({ params }) => routeHistory(store, params.route!),
    }),
  ] as Endpoint<never>[];
}
