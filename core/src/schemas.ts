import { z } from 'zod';
import { BUCKETS } from './hash.ts';
import { EventDeclaration } from './event-catalogue.ts';

export const KEY_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const EVENT_TYPE_PATTERN = /^[a-z][a-z0-9_]{0,63}$/;

export const Key = z.string().regex(KEY_PATTERN, 'must match ^[a-z0-9][a-z0-9._-]{0,63}$');

/** Event types only the gateway writes: requests answered (SPEC §5) and shadow pairs (SPEC §13). */
export const GATEWAY_EVENT_TYPES: readonly string[] = ['exposure', 'shadow'];
/** A behaviour event's type, as a client sends it and the event catalogue declares it. */
export const BehaviourEventType = z
  .string()
  .regex(EVENT_TYPE_PATTERN, 'must match ^[a-z][a-z0-9_]{0,63}$')
  .refine((t) => !GATEWAY_EVENT_TYPES.includes(t), { error: (issue) => `${String(issue.input)} events are written by the gateway` });

const JsonValue: z.ZodType<unknown> = z.json();
export const Params = z.record(z.string().min(1).max(128), JsonValue);
export type Params = z.infer<typeof Params>;

const HttpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL');

// ---------------------------------------------------------------- targeting

export const TargetingOp = z.enum(['eq', 'neq', 'in', 'nin', 'gt', 'gte', 'lt', 'lte', 'exists']);
export type TargetingOp = z.infer<typeof TargetingOp>;

const Scalar = z.union([z.string(), z.number(), z.boolean()]);

export const TargetingRule = z
  .strictObject({
    attribute: z.string().min(1).max(128),
    op: TargetingOp,
    value: z.union([Scalar, z.array(Scalar)]).optional(),
  })
  .superRefine((rule, ctx) => {
    const needs = (ok: boolean, what: string) => {
      if (!ok) ctx.addIssue({ code: 'custom', path: ['value'], message: `op "${rule.op}" needs ${what}` });
    };
    switch (rule.op) {
      case 'in':
      case 'nin':
        needs(Array.isArray(rule.value), 'an array value');
        break;
      case 'gt':
      case 'gte':
      case 'lt':
      case 'lte':
        needs(typeof rule.value === 'number' && Number.isFinite(rule.value), 'a number value');
        break;
      case 'eq':
      case 'neq':
        needs(rule.value !== undefined && !Array.isArray(rule.value), 'a single value');
        break;
      case 'exists':
        needs(rule.value === undefined || typeof rule.value === 'boolean', 'no value or a boolean');
        break;
    }
  });
export type TargetingRule = z.infer<typeof TargetingRule>;

// ---------------------------------------------------------------- routes

/** An HTTP field name: a token (RFC 9110 §5.1). */
export const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** What an HTTP field value may hold: no CR, LF, NUL or other control characters (RFC 9110 §5.5). */
export const HTTP_FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** A fixed fallback's headers go out as they are. */
const HeaderName = z.string().regex(HTTP_TOKEN, 'must be an HTTP header name');
const HeaderValue = z.string().regex(HTTP_FIELD_VALUE, 'must be an HTTP header value (no CR, LF or other control characters)');

export const Fallback = z.union([
  z.strictObject({ upstream: HttpUrl }),
  z.strictObject({
    status: z.number().int().min(100).max(599).default(200),
    body: JsonValue,
    headers: z.record(HeaderName, HeaderValue).optional(),
  }),
]);
export type Fallback = z.infer<typeof Fallback>;

/**
 * Shadow traffic (SPEC §13): `percent` of the route's requests are also sent, after the answer,
 * with `params` merged over the request's params, to `upstream` (the route's when absent); the
 * pair is logged as a `shadow` event comparing the JSON field `compare` of both answers.
 */
export const ShadowSpec = z.strictObject({
  params: Params,
  percent: z.number().gt(0).max(100),
  upstream: HttpUrl.optional(),
  compare: z.string().min(1).max(64).default('predictions'),
  /**
   * How long a copy may take (default: the route's `timeoutMs`). No client waits for it, so it
   * may be longer than the route's, to measure a slower model's latency rather than cut it off.
   */
  timeoutMs: z.number().int().min(1).max(120_000).optional(),
});
export type ShadowSpec = z.infer<typeof ShadowSpec>;

export const RouteInput = z.strictObject({
  upstream: HttpUrl,
  path: z.string().startsWith('/').default('/'),
  defaultParams: Params.default({}),
  timeoutMs: z.number().int().min(1).max(120_000).default(1000),
  fallback: Fallback.optional(),
  shadow: ShadowSpec.optional(),
});
export type RouteInput = z.input<typeof RouteInput>;
export const Route = RouteInput.extend({ key: Key, updatedAt: z.string() });
export type Route = z.infer<typeof Route>;

// ---------------------------------------------------------------- metrics

const EventRef = z.strictObject({
  event: z.string().regex(EVENT_TYPE_PATTERN, 'must be an event type'),
  field: z.literal('value').optional(),
});

export const MetricDefinition = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('proportion'), event: EventRef.shape.event, description: z.string().max(500).optional() }),
  z.strictObject({ type: z.literal('mean'), event: EventRef.shape.event, description: z.string().max(500).optional() }),
  z.strictObject({ type: z.literal('ratio'), numerator: EventRef, denominator: EventRef, description: z.string().max(500).optional() }),
]);
export type MetricDefinition = z.infer<typeof MetricDefinition>;
export type BuiltInMetric = { key: 'error_rate' | 'latency_ms'; type: 'proportion' | 'mean'; builtIn: true; description: string };
export type Metric = (MetricDefinition & { key: string; builtIn?: false }) | BuiltInMetric;

/**
 * Always available as guardrails, computed by the aggregator from the gateway's own exposure
 * events (SPEC §5): `error_rate` is the share of exposed units with an exposure answered >= 500,
 * `latency_ms` the per-unit mean of the exposures' `latencyMs`.
 */
export const BUILT_IN_METRICS: Record<BuiltInMetric['key'], BuiltInMetric> = {
  error_rate: { key: 'error_rate', type: 'proportion', builtIn: true, description: 'Share of exposed units that saw an upstream error (status >= 500)' },
  latency_ms: { key: 'latency_ms', type: 'mean', builtIn: true, description: 'Mean gateway latency of a unit\'s exposures, in milliseconds' },
};

// ---------------------------------------------------------------- experiments

export const ExperimentStatus = z.enum(['draft', 'running', 'paused', 'released', 'rolled_back', 'archived']);
export type ExperimentStatus = z.infer<typeof ExperimentStatus>;

/** Percentages with at most two decimals; compared in hundredths so 33.33+33.33+33.34 sums exactly. */
export const Weight = z
  .number()
  .min(0)
  .max(100)
  .refine((w) => Math.abs(w * 100 - Math.round(w * 100)) < 1e-6, 'at most two decimals');

export const Variant = z.strictObject({
  key: Key,
  name: z.string().max(200).optional(),
  weight: Weight,
  params: Params.default({}),
  upstream: HttpUrl.optional(),
});
export type Variant = z.infer<typeof Variant>;

export const Allocation = z
  .strictObject({ start: z.number().int().min(0).max(BUCKETS), end: z.number().int().min(0).max(BUCKETS) })
  .refine((a) => a.start < a.end, { message: 'start must be below end', path: ['end'] });
export type Allocation = z.infer<typeof Allocation>;

/** One step of a guarded rollout (SPEC §10): its weights hold at least `minMinutes` and until every variant has `minUnits`. */
export const RolloutStep = z.strictObject({
  weights: z.record(Key, Weight),
  minMinutes: z.number().min(0).max(525_600),
  minUnits: z.number().int().min(0).max(1e9),
});
export type RolloutStep = z.infer<typeof RolloutStep>;

/** A metric the rollout must not harm: tested one-sided against control (SPEC §10). */
export const RolloutGuardrail = z.strictObject({
  metric: Key,
  harm: z.enum(['increase', 'decrease']),
  /** 0: any harm counts (absolute difference); above 0: a relative difference beyond it (0.05 = 5%). */
  margin: z.number().min(0).max(10),
});
export type RolloutGuardrail = z.infer<typeof RolloutGuardrail>;

/** The autopilot's plan (SPEC §10). Defaults are SPEC §10's default plan. */
export const RolloutPlan = z.strictObject({
  steps: z.array(RolloutStep).min(1).max(20),
  guardrails: z.array(RolloutGuardrail).max(20),
  alpha: z.number().gt(0).lt(1).default(0.05),
  minUnitsForDecision: z.number().int().min(1).max(1e9).default(100),
  onHarm: z.enum(['rollback', 'pause']).default('rollback'),
  onSrm: z.enum(['pause', 'rollback']).default('pause'),
  onNoTraffic: z
    .strictObject({ afterMinutes: z.number().gt(0).max(525_600), action: z.enum(['pause', 'rollback', 'hold']) })
    .default({ afterMinutes: 60, action: 'pause' }),
  whenDone: z.enum(['promote-if-primary-wins', 'promote', 'hold']).default('promote-if-primary-wins'),
});
export type RolloutPlan = z.infer<typeof RolloutPlan>;
export type RolloutPlanInput = z.input<typeof RolloutPlan>;

/** Where a running rollout is: its step, since when, and whether the autopilot or a person drives it. */
export const RolloutState = z.strictObject({
  step: z.number().int().min(0),
  /** When the current step's weights took effect (ISO). */
  stepStartedAt: z.string(),
  /** `paused`: a person took over; the autopilot only reports. */
  autopilot: z.enum(['active', 'paused']).default('active'),
});
export type RolloutState = z.infer<typeof RolloutState>;

export function hundredths(weight: number): number {
  return Math.round(weight * 100);
}

function checkVariants(
  def: { variants: Variant[]; overrides?: Record<string, string>; design?: 'ab' | 'interleave'; rollout?: unknown },
  ctx: z.RefinementCtx,
): void {
  // Interleaving compares two rankings within each request; a guarded rollout ramps an A/B split.
  if (def.design === 'interleave') {
    if (def.variants.length !== 2) ctx.addIssue({ code: 'custom', path: ['variants'], message: 'an interleaving experiment has exactly two variants' });
    if (def.rollout !== undefined) ctx.addIssue({ code: 'custom', path: ['rollout'], message: 'an interleaving experiment cannot have a rollout plan' });
  }
  const seen = new Set<string>();
  def.variants.forEach((v, i) => {
    if (seen.has(v.key)) ctx.addIssue({ code: 'custom', path: ['variants', i, 'key'], message: `duplicate variant "${v.key}"` });
    seen.add(v.key);
  });
  const total = def.variants.reduce((sum, v) => sum + hundredths(v.weight), 0);
  if (total !== 100 * 100) {
    ctx.addIssue({ code: 'custom', path: ['variants'], message: `weights must sum to exactly 100 (got ${total / 100})` });
  }
  for (const [unit, variant] of Object.entries(def.overrides ?? {})) {
    if (!seen.has(variant)) {
      ctx.addIssue({ code: 'custom', path: ['overrides', unit], message: `unknown variant "${variant}"` });
    }
  }
}

const ExperimentFields = {
  key: Key,
  name: z.string().min(1).max(200).optional(),
  hypothesis: z.string().max(2000).optional(),
  route: Key,
  layer: Key.optional(),
  trafficPercent: z.number().gt(0).max(100).optional(),
  allocation: Allocation.optional(),
  salt: z.string().max(64).default(''),
  targeting: z.array(TargetingRule).max(50).default([]),
  variants: z.array(Variant).min(2).max(20),
  /**
   * `interleave` (SPEC §13): on a route whose upstream answers a ranked list, every request gets
   * the team-draft merge of both variants' lists, and per unit the variant whose items drew more
   * clicks wins. Two variants, no rollout plan. Absent: an A/B test.
   */
  design: z.enum(['ab', 'interleave']).optional(),
  overrides: z.record(z.string().min(1).max(256), Key).default({}),
  metrics: z
    .strictObject({
      primary: Key.optional(),
      /** Further metrics to decide on; corrected together with the primary (SPEC §11). */
      secondary: z.array(Key).max(20).optional(),
      guardrails: z.array(Key).max(20).default([]),
    })
    .default({ guardrails: [] }),
  /** How the results are analysed (SPEC §11); absent fields take their defaults. */
  analysis: z
    .strictObject({
      /** Multiple-testing correction over the primary and secondary metrics × treatment variants. */
      correction: z.enum(['none', 'holm', 'bh']).optional(),
      /** Days before a unit's first exposure whose events give CUPED's covariate. */
      preWindowDays: z.number().int().min(1).max(90).optional(),
      /** CUPED is applied wherever a covariate exists unless this is false. */
      cuped: z.boolean().optional(),
      /** Request attributes to slice the results by (SPEC §11), read from each unit's first exposure. */
      sliceBy: z
        .array(z.string().min(1).max(64))
        .max(5)
        .refine((names) => new Set(names).size === names.length, 'attributes must be distinct')
        .optional(),
    })
    .optional(),
  /** A guarded rollout: the autopilot ramps, tests guardrails and promotes or rolls back (SPEC §10). */
  rollout: RolloutPlan.optional(),
};

/** What a PM submits (SPEC §4 definition). Unknown fields are rejected. */
export const ExperimentDefinition = z.strictObject(ExperimentFields).superRefine(checkVariants);
export type ExperimentDefinition = z.infer<typeof ExperimentDefinition>;
export type ExperimentDefinitionInput = z.input<typeof ExperimentDefinition>;

/** Weights from `startedAt` on; null where they were not recorded (ramped before phases were kept). */
export const ExperimentPhase = z.strictObject({ startedAt: z.string(), weights: z.record(Key, Weight).nullable() });
export type ExperimentPhase = z.infer<typeof ExperimentPhase>;

/**
 * What makes an experiment a release (POST /v1/releases, SPEC §12, ADR 0011): control is the
 * route's behaviour (empty params), and promoting the winner writes its params into the route's
 * `defaultParams` in the same config version.
 */
export const ReleaseInfo = z.strictObject({
  /** The route's `defaultParams` when the release started: what control served. */
  baseline: Params,
  /** Set by promotion: the keys it wrote into the route's defaults and what they held before (absent keys are not listed). */
  promoted: z.strictObject({ variant: Key, params: Params, before: Params }).optional(),
});
export type ReleaseInfo = z.infer<typeof ReleaseInfo>;

/** What the service stores and publishes. */
export const Experiment = z
  .strictObject({
    ...ExperimentFields,
    layer: Key,
    allocation: Allocation,
    trafficPercent: z.number().gt(0).max(100),
    status: ExperimentStatus,
    version: z.number().int().min(1),
    createdAt: z.string(),
    updatedAt: z.string(),
    startedAt: z.string().optional(),
    releasedVariant: Key.optional(),
    releasedAt: z.string().optional(),
    /**
     * When the current weights took effect (set by a ramp). Units first exposed before it were
     * split by older weights, so the sample-ratio check counts only units exposed since.
     */
    weightsChangedAt: z.string().optional(),
    /**
     * The weights in effect since the experiment started, oldest first: each weight change starts
     * a phase. The results analyse each unit in the phase of its first exposure (ADR 0009).
     */
    phases: z.array(ExperimentPhase).optional(),
    rolloutState: RolloutState.optional(),
    release: ReleaseInfo.optional(),
  })
  .superRefine(checkVariants);
export type Experiment = z.infer<typeof Experiment>;

export const RampRequest = z.strictObject({ weights: z.record(Key, Weight) });
export const PromoteRequest = z.strictObject({ variant: Key });

// ---------------------------------------------------------------- config snapshot

export const Holdout = z.strictObject({ percent: z.number().min(0).max(100), salt: z.string().max(64).default('') });
export type Holdout = z.infer<typeof Holdout>;

export const ConfigSnapshot = z.object({
  version: z.number().int().min(0),
  /**
   * The identity of the experiment-service's data (absent from services before epochs). A
   * snapshot of another epoch than the one a gateway serves comes from data that was lost or
   * replaced: gateways take it only when an operator says so (GATEWAY_ACCEPT_EPOCH).
   */
  epoch: z.string().min(1).max(100).optional(),
  routes: z.record(z.string(), Route),
  experiments: z.array(Experiment),
  metrics: z.record(z.string(), z.any()),
  holdout: Holdout.nullable().default(null),
  /** The event catalogue by type (SPEC §16); snapshots from before it had none. */
  events: z.record(z.string(), EventDeclaration).default({}),
});
export type ConfigSnapshot = z.infer<typeof ConfigSnapshot>;

// ---------------------------------------------------------------- events

export const AssignmentRef = z.strictObject({ experiment: Key, variant: Key });
export type AssignmentRef = z.infer<typeof AssignmentRef>;
/** One experiment's assignment of a unit (SPEC §3 step 4): `forced` when an override chose it. */
export interface Assignment {
  experiment: string;
  variant: string;
  forced: boolean;
}

/**
 * A unit id: 1 to 256 characters of well-formed Unicode. A lone surrogate (`"\ud800"` in JSON)
 * has no UTF-8, so it could neither be hashed as SPEC §3 says nor be stored as it came.
 */
export const UnitId = z
  .string()
  .min(1)
  .max(256)
  .refine((s) => !/\p{Cs}/u.test(s), 'must be valid Unicode (no lone surrogate)');

export const Event = z.strictObject({
  eventId: z.string().uuid(),
  type: z.string().regex(EVENT_TYPE_PATTERN, 'must match ^[a-z][a-z0-9_]{0,63}$'),
  ts: z.number().int().min(0),
  unitId: UnitId,
  route: z.string().max(64).optional(),
  requestId: z.string().max(128).optional(),
  assignments: z.array(AssignmentRef).max(100).default([]),
  value: z.number().finite().optional(),
  latencyMs: z.number().finite().min(0).optional(),
  status: z.number().int().min(0).max(999).optional(),
  /**
   * On an exposure whose answer did not come from the assigned variant's model (SPEC §11,
   * assigned vs served): `route` when the route's fallback answered (`x-ab-fallback`), `model`
   * when the model-server answered with its fallback version (`x-model-fallback`). Absent: served
   * as assigned (and on events written before this field existed).
   */
  fallback: z.enum(['route', 'model']).optional(),
  attributes: z.record(z.string(), Scalar).optional(),
  /** On a behaviour event: the item it concerns, e.g. the clicked item of an interleaved list (SPEC §13). */
  itemId: z.string().min(1).max(128).optional(),
  /**
   * On the exposure of an interleaved request (SPEC §13): the merged list's item ids in the order
   * served and, for each, the variant whose ranking contributed it.
   */
  interleaving: z
    .strictObject({ experiment: Key, items: z.array(z.string().min(1).max(128)).max(100), teams: z.array(Key).max(100) })
    .refine((i) => i.items.length === i.teams.length, 'items and teams must have the same length')
    .optional(),
  /**
   * On a `shadow` event (SPEC §13): the request as answered (`primary`) and as the shadow answered
   * it, each with its params, status, latency and the compared field of its answer (absent when
   * the answer had none, or it was larger than the gateway keeps).
   */
  shadow: z
    .strictObject({
      compare: z.string().max(64),
      primary: z.strictObject({ params: Params, status: z.number().int().min(0).max(999), latencyMs: z.number().finite().min(0), output: JsonValue.optional() }),
      shadow: z.strictObject({ params: Params, status: z.number().int().min(0).max(999), latencyMs: z.number().finite().min(0), output: JsonValue.optional() }),
    })
    .optional(),
  /**
   * Set by a gateway whose event policy is `warn` on a behaviour event that does not match the
   * approved catalogue (SPEC §16); absent: it matched, or was not checked.
   */
  catalogue: z.enum(['undeclared', 'invalid']).optional(),
});
export type Event = z.infer<typeof Event>;

/** What a client may send to the gateway's /v1/events; the gateway fills in the rest. */
export const ClientEvent = z.strictObject({
  eventId: z.string().uuid().optional(),
  type: BehaviourEventType,
  ts: z.number().int().min(0).optional(),
  unitId: UnitId,
  route: z.string().max(64).optional(),
  requestId: z.string().max(128).optional(),
  value: z.number().finite().optional(),
  attributes: z.record(z.string(), Scalar).optional(),
  /** The item the event concerns; a click naming `requestId` and `itemId` is credited by interleaving (SPEC §13). */
  itemId: z.string().min(1).max(128).optional(),
});
export type ClientEvent = z.infer<typeof ClientEvent>;

export const EVENTS_TOPIC = 'bunryu.events';
export const MAX_EVENTS_PER_CALL = 500;
