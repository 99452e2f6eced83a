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
