import { Holdout, Key, MetricDefinition, Route, RouteInput, createError, type EventPolicy } from '@bunryu/core';
import { metricEventRefs, type EventCatalogue } from '../events/event-catalogue.ts';
import type { ConfigCatalog } from '../catalog/config-catalog.ts';
import { Metric, MetricCatalogue, RouteList } from '../openapi/schemas.ts';
import { endpoint, type Endpoint } from './endpoint.ts';

/** How metrics are checked against the event catalogue: `policy` is BUNRYU_EVENT_POLICY's strictest. */
export interface MetricEventCheck {
  catalogue: EventCatalogue;
  policy: EventPolicy;
}

export function catalogEndpoints(catalog: ConfigCatalog, events: MetricEventCheck): Endpoint<never>[] {
  return [
    endpoint({
      method: 'PUT',
      url: '/v1/routes/:route',
      operationId: 'putRoute',
      summary: 'Create or replace a route (200 replaced, 201 created)',
      role: 'admin',
      params: { route: Key },
      body: RouteInput,
      response: Route,
      alsoAnswers: { 201: 'Created' },
      handler: async ({ params, body, principal, reply }) => {
        const { route, created } = await catalog.putRoute(params.route!, body, principal!);
        if (created) void reply.code(201);
        return route;
      },
    }),
    endpoint({
      method: 'GET',
      url: '/v1/routes',
      operationId: 'listRoutes',
      summary: 'All routes, sorted by key',
      role: 'viewer',
      response: RouteList,
      handler: () => catalog.routes(),
    }),
    endpoint({
      method: 'GET',
      url: '/v1/routes/:route',
      operationId: 'getRoute',
      summary: 'One route',
      role: 'viewer',
      response: Route,
      errors: ['BUNRYU_NOT_FOUND'],
      handler: ({ params }) => catalog.route(params.route!),
    }),
    endpoint({
      method: 'PUT',
      url: '/v1/metrics/:key',
      operationId: 'putMetric',
      summary:
        'Define or redefine a metric (200 replaced, 201 created); the built-ins error_rate and latency_ms cannot be redefined. An event without an approved declaration is refused (400) when BUNRYU_EVENT_POLICY is strict, and named in `warnings` when it is warn',
      role: 'editor',
      params: { key: Key },
      body: MetricDefinition,
      response: Metric,
      errors: ['BUNRYU_ALREADY_EXISTS'],
      alsoAnswers: { 201: 'Created' },
      handler: async ({ params, body, principal, reply }) => {
        const warnings = await events.catalogue.checkMetricEvents(metricEventRefs(body), events.policy);
        const { metric, created } = await catalog.putMetric(params.key!, body, principal!);
        if (created) void reply.code(201);
        return warnings.length > 0 ? { ...metric, warnings } : metric;
      },
    }),
    endpoint({
      method: 'GET',
      url: '/v1/metrics',
      operationId: 'listMetrics',
      summary: 'The metric catalogue by key: the built-ins and every defined metric',
      role: 'viewer',
      response: MetricCatalogue,
      handler: () => catalog.metrics(),
    }),
    endpoint({
      method: 'GET',
      url: '/v1/metrics/:key',
      operationId: 'getMetric',
      summary: 'One metric of the catalogue',
      role: 'viewer',
      response: Metric,
      errors: ['BUNRYU_NOT_FOUND'],
      handler: ({ params }) => catalog.metric(params.key!),
    }),
    endpoint({
      method: 'PUT',
      url: '/v1/holdout',
      operationId: 'putHoldout',
      summary: 'Set the global holdout: percent of units that get no running experiment (0 turns it off)',
      role: 'admin',
      body: Holdout,
      response: Holdout,
      handler: ({ body, principal }) => catalog.setHoldout(body, principal!),
    }),
    endpoint({
      method: 'GET',
      url: '/v1/holdout',
      operationId: 'getHoldout',
      summary: 'The global holdout (404 when none was ever set)',
      role: 'viewer',
      response: Holdout,
      errors: ['BUNRYU_NOT_FOUND'],
      handler: async () => {
        const holdout = await catalog.holdout();
        if (!holdout) throw createError('BUNRYU_NOT_FOUND', 'No holdout is set');
        return holdout;
      },
    }),
  ] as Endpoint<never>[];
}
