import { z } from 'zod';
import {
  ConfigSnapshot,
  ERROR_CATALOGUE,
  EventDeclaration,
  EventSchemaInput,
  Experiment,
  ExperimentDefinition,
  Holdout,
  Key,
  Params,
  MetricDefinition,
  PromoteRequest,
  RampRequest,
  RolloutPlan,
  RolloutState,
  Route,
  RouteInput,
} from '@bunryu/core';
import { ROLES } from '@bunryu/platform/auth';

/**
 * Every body and answer of the API, by name. Endpoints reference these schema objects, the
 * handlers parse with them, and the OpenAPI document is generated from the same objects, so the
 * document cannot drift from what the service accepts.
 */
export const requestSchemas = z.registry<{ id: string }>();
export const responseSchemas = z.registry<{ id: string }>();

/** Actions without a body accept none, or `{}`; anything else is an unknown field. */
export const NoBody = z.strictObject({}).optional();

const Principal = z.object({ role: z.enum(ROLES), name: z.string() });

export const Metric = z.union([
  z.object({ key: z.enum(['error_rate', 'latency_ms']), type: z.enum(['proportion', 'mean']), builtIn: z.literal(true), description: z.string() }),
  z.intersection(MetricDefinition, z.object({ key: Key, builtIn: z.literal(false) })),
]);
export const MetricCatalogue = z.record(z.string(), Metric);

export const AuditEntry = z.object({
  configVersion: z.number().int().describe('The config snapshot version this change produced'),
  subject: z.string().describe('experiment:<key>, route:<key>, metric:<key>, event:<type> or holdout'),
  action: z.string(),
  actor: Principal,
  at: z.string(),
  before: z.unknown(),
  after: z.unknown(),
  decision: z.unknown().optional().describe("An autopilot action's decision: reason, message and evidence"),
  changed: z.array(z.string()).describe('Top-level fields that differ between before and after'),
});

const StoredAuditEntry = z.strictObject({
  configVersion: z.number().int().min(1),
  subject: z.string().min(1).max(200),
  action: z.string().min(1).max(100),
  actor: z.strictObject({ role: z.enum(ROLES), name: z.string().max(200) }),
  at: z.string().max(100),
  before: z.unknown(),
  after: z.unknown(),
  decision: z.unknown().optional(),
});
const StoredMetric = z.discriminatedUnion(
  'type',
  MetricDefinition.options.map((o) => o.extend({ key: Key })) as unknown as [
    (typeof MetricDefinition.options)[number],
    ...(typeof MetricDefinition.options)[number][],
  ],
);

/** Everything the store holds (`GET /v1/export`), what `POST /v1/import` takes back. */
export const ExportDocument = z.object({
  format: z.literal(1),
  epoch: z.string().describe("The epoch of the exported data; an import draws a new one"),
  version: z.number().int().describe('The config version'),
  experiments: z.array(Experiment).describe('Every experiment, drafts and finished ones included'),
  routes: z.array(Route),
  metrics: z.array(z.record(z.string(), z.unknown())).describe('User-defined metrics (the built-ins are not stored)'),
  holdout: Holdout.nullable(),
  events: z.array(EventDeclaration).describe('The event catalogue, every declaration whatever its status'),
  audit: z.array(StoredAuditEntry).describe('Every audit entry, oldest first'),
});

export const ImportDocument = z
  .strictObject({
    format: z.literal(1),
    epoch: z.string().max(100).optional().describe('The epoch of the export; the import draws a new one'),
    version: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    experiments: z.array(Experiment),
    routes: z.array(Route),
    metrics: z.array(StoredMetric),
    holdout: Holdout.nullable(),
    /** Exports made before the event catalogue have none. */
    events: z.array(EventDeclaration).default([]),
    audit: z.array(StoredAuditEntry),
  })
  .superRefine((d, ctx) => {
    for (const part of ['experiments', 'routes', 'metrics'] as const) {
      const seen = new Set<string>();
      d[part].forEach((item, i) => {
        const key = (item as { key: string }).key;
        if (seen.has(key)) ctx.addIssue({ code: 'custom', path: [part, i, 'key'], message: `${key} appears twice` });
        seen.add(key);
      });
    }
    let last = 0;
    d.audit.forEach((a, i) => {
      if (a.configVersion > d.version) ctx.addIssue({ code: 'custom', path: ['audit', i, 'configVersion'], message: `is after the config version ${d.version}` });
      else if (a.configVersion < last) ctx.addIssue({ code: 'custom', path: ['audit', i, 'configVersion'], message: 'entries must be oldest first' });
      last = Math.max(last, a.configVersion);
    });
    if (d.version === 0 && d.experiments.length + d.routes.length + d.metrics.length > 0) {
      ctx.addIssue({ code: 'custom', path: ['version'], message: 'must be above 0 when there is anything to import' });
    }
  });
export const ImportResult = z.object({
  epoch: z.string().describe('The new epoch: gateways take snapshots of it only when told to (GATEWAY_ACCEPT_EPOCH)'),
  version: z.number().int(),
  experiments: z.number().int(),
  routes: z.number().int(),
  metrics: z.number().int(),
  audit: z.number().int(),
});

export const ErrorBody = z.object({
  error: z.object({
    code: z.enum(Object.keys(ERROR_CATALOGUE) as [keyof typeof ERROR_CATALOGUE]),
    message: z.string(),
    details: z.unknown().optional(),
  }),
});

export const RolloutView = z.object({
  experiment: Key,
  status: z.string(),
  plan: RolloutPlan,
  state: RolloutState,
  currentWeights: z.record(z.string(), z.number()),
  evaluatedAt: z.string().nullable().describe('When this replica last evaluated the rollout (null: not yet, or the autopilot is off here)'),
  guardrails: z
    .array(z.record(z.string(), z.unknown()))
    .describe('Per guardrail and treatment: metric, variant, baseline, harm, margin, relative, estimate, bound (one-sided, always valid), level (α/k), units, verdict'),
  lastDecision: z.record(z.string(), z.unknown()).nullable().describe("This replica's last decision: action, reason, message, evidence, applied"),
  decisions: z.array(AuditEntry).describe("The autopilot's actions from the audit log, newest first"),
});

export const ExperimentList = z.array(Experiment);
export const RouteList = z.array(Route);
export const EventDeclarationList = z.array(EventDeclaration);
export const AuditLog = z.array(AuditEntry);
export const Caller = Principal;
export const OpenApiDocument = z.record(z.string(), z.unknown());

requestSchemas.add(ExperimentDefinition, { id: 'ExperimentDefinition' });
requestSchemas.add(RouteInput, { id: 'RouteInput' });
requestSchemas.add(MetricDefinition, { id: 'MetricDefinition' });
requestSchemas.add(RampRequest, { id: 'RampRequest' });
requestSchemas.add(PromoteRequest, { id: 'PromoteRequest' });
requestSchemas.add(Holdout, { id: 'HoldoutInput' });
requestSchemas.add(NoBody, { id: 'NoBody' });
requestSchemas.add(ImportDocument, { id: 'ImportDocument' });
requestSchemas.add(EventSchemaInput, { id: 'EventSchemaInput' });

responseSchemas.add(Experiment, { id: 'Experiment' });
responseSchemas.add(RolloutView, { id: 'RolloutView' });
responseSchemas.add(ExperimentList, { id: 'ExperimentList' });
responseSchemas.add(Route, { id: 'Route' });
responseSchemas.add(RouteList, { id: 'RouteList' });
responseSchemas.add(Metric, { id: 'Metric' });
responseSchemas.add(MetricCatalogue, { id: 'MetricCatalogue' });
responseSchemas.add(Holdout, { id: 'Holdout' });
responseSchemas.add(ConfigSnapshot, { id: 'ConfigSnapshot' });
responseSchemas.add(EventDeclaration, { id: 'EventDeclaration' });
responseSchemas.add(EventDeclarationList, { id: 'EventDeclarationList' });
responseSchemas.add(AuditEntry, { id: 'AuditEntry' });
responseSchemas.add(AuditLog, { id: 'AuditLog' });
responseSchemas.add(Caller, { id: 'Caller' });
responseSchemas.add(ErrorBody, { id: 'Error' });
responseSchemas.add(OpenApiDocument, { id: 'OpenApiDocument' });

/** POST /v1/releases (SPEC §12): a guarded rollout of `params` against the route's current behaviour. */
export const ReleaseRequest = z.strictObject({
  route: Key,
  params: Params.refine((p) => Object.keys(p).length > 0, 'must set at least one parameter, e.g. {"version": "v3"}'),
  plan: RolloutPlan.optional().describe('Steps name the variants control and treatment; absent: the default plan of SPEC §10'),
  name: z.string().min(1).max(200).optional(),
  key: Key.optional().describe('The experiment key; absent: <route>-release-<version>, numbered when taken'),
  metrics: z
    .strictObject({ primary: Key.optional(), guardrails: z.array(Key).max(20).optional() })
    .optional()
    .describe("Absent primary: that of the route's most recently started experiment; the plan's guardrails are always included"),
});
export type ReleaseRequest = z.infer<typeof ReleaseRequest>;
requestSchemas.add(ReleaseRequest, { id: 'ReleaseRequest' });

const ServingView = z.object({
  defaultParams: Params,
  released: z.array(z.object({ experiment: Key, variant: Key, params: Params })),
  running: z.array(z.object({ experiment: Key, variants: z.array(z.object({ key: Key, weight: z.number(), params: Params })) })),
});
export const RouteHistoryView = z.object({
  route: Key,
  entries: z.array(
    z.object({
      configVersion: z.number().int(),
      at: z.string(),
      actor: Principal,
      decidedBy: z.enum(['person', 'autopilot']),
      decision: z.unknown().optional().describe("The autopilot's decision: reason, message and evidence"),
      changes: z.array(z.object({ subject: z.string(), action: z.string(), summary: z.string() })),
      serving: ServingView.describe('What the route served after this config version'),
    }),
  ),
});
responseSchemas.add(RouteHistoryView, { id: 'RouteHistory' });
responseSchemas.add(ExportDocument, { id: 'ExportDocument' });
responseSchemas.add(ImportResult, { id: 'ImportResult' });
