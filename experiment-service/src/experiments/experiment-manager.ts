import {
  BUILT_IN_METRICS,
  Experiment,
  LEADS_TO,
  assertAllowed,
  createError,
  hundredths,
  parseOrThrow,
  rolloutEditIssues,
  rolloutPlanIssues,
  validationError,
  withNewPhase,
  type ExperimentAction,
  type ExperimentDefinition,
  type ExperimentStatus,
  type Params,
  type ReleaseInfo,
  type Route,
} from '@bunryu/core';
import type { Principal } from '@bunryu/platform/auth';
import { StaleWriteError, type AuditEntry, type AuditInput, type ExperimentStore, type StoreState } from '../store/experiment-store.ts';
import { RESERVES_RANGE, assertFree, placeInLayer } from './allocation.ts';
import { findParamConflict } from './param-conflicts.ts';

export interface ExperimentManagerOptions {
  now?: () => Date;
  /** How often a change that lost a race against another writer is re-read and re-applied. */
  maxAttempts?: number;
}

/** An If-Match header: `*` (any existing version) or the versions it names; absent: undefined. */
export type IfMatch = '*' | readonly number[] | undefined;

type Mutation = (current: Experiment, state: StoreState | undefined) => Experiment;

/** What a change of an experiment also writes in the same commit: a release's route. */
interface SideEffects {
  routes: Route[];
  audit: AuditInput[];
}

/** Who takes an automatic action, as the audit log names it (SPEC §10). */
export const AUTOPILOT: Principal = { role: 'releaser', name: 'autopilot' };

/** What an autopilot action carries into the audit log: its step and its decision with the evidence. */
export interface AutopilotContext {
  /** For a ramp: the plan step it moves to. */
  toStep?: number;
  decision: unknown;
}

/**
 * Experiment lifecycle (SPEC §3, §4): every change is validated against a fresh read, then
 * committed on the condition that the experiment, and every experiment the validation looked
 * at, is still at the version read. A change that lost such a race is re-read and re-applied,
 * unless the caller pinned the version with If-Match: then it is a 412.
 */
export class ExperimentManager {
  private readonly now: () => Date;
  private readonly maxAttempts: number;

  constructor(
    private readonly store: ExperimentStore,
    options: ExperimentManagerOptions = {},
  ) {
    this.now = options.now ?? (() => new Date());
    this.maxAttempts = options.maxAttempts ?? 100;
  }

  async list(filter: { status?: ExperimentStatus; route?: string } = {}): Promise<Experiment[]> {
    const { experiments } = await this.store.load();
    return experiments
      .filter((e) => (filter.status === undefined || e.status === filter.status) && (filter.route === undefined || e.route === filter.route))
      .sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  async get(key: string): Promise<Experiment> {
    const e = await this.store.getExperiment(key);
    if (!e) throw notFound(key);
    return e;
  }

  async history(key: string): Promise<AuditEntry[]> {
    await this.get(key);
    return this.store.audit({ subject: subjectOf(key) });
  }

  async create(def: ExperimentDefinition, actor: Principal): Promise<Experiment> {
    for (let attempt = 1; ; attempt++) {
      const state = await this.store.load();
      if (state.experiments.some((e) => e.key === def.key)) throw alreadyExists(def.key);
      checkMetricRefs(def, state);
      checkRolloutPlan(def, undefined);
      const layer = def.layer ?? def.key;
      const at = this.now().toISOString();
      const experiment = parseOrThrow(Experiment, {
        ...def,
        layer,
        ...placeInLayer(def, layer, state, undefined),
        status: 'draft',
        version: 1,
        createdAt: at,
        updatedAt: at,
      });
      const expect = { [def.key]: 0, ...versionsOf(related(state, experiment)) };
      try {
        await this.store.commit({
          expect,
          experiments: [experiment],
          audit: [{ subject: subjectOf(def.key), action: 'create', actor, at, before: null, after: experiment }],
        });
        return experiment;
      } catch (err) {
        if (err instanceof StaleWriteError && err.key === def.key) throw alreadyExists(def.key);
        await this.retryOrThrow(err, attempt);
      }
    }
  }

  /**
   * Creates and starts a release in one commit (SPEC §12): a definition already shaped by
   * `releaseDefinition`, running from its plan's first step, so a failed start leaves no draft.
   * One release runs per route at a time (409 naming the one running).
   */
  async startRelease(def: ExperimentDefinition, actor: Principal): Promise<Experiment> {
    for (let attempt = 1; ; attempt++) {
      const state = await this.store.load();
      if (state.experiments.some((e) => e.key === def.key)) throw alreadyExists(def.key);
      const route = state.routes.find((r) => r.key === def.route);
      if (!route) throw validationError([{ path: ['route'], message: `no route "${def.route}": define it with PUT /v1/routes/${def.route} first` }]);
      const running = state.experiments.find((e) => e.release && e.route === def.route && (e.status === 'running' || e.status === 'paused'));
      if (running) {
        throw createError('BUNRYU_ALREADY_EXISTS', `Route ${def.route} already has a ${running.status} release, ${running.key}: promote or roll it back before starting another`, { route: def.route, experiment: running.key });
      }
      checkMetricRefs(def, state);
      checkRolloutPlan(def, undefined);
      const layer = def.layer ?? def.key;
      const at = this.now().toISOString();
      const draft = { ...def, layer, ...placeInLayer(def, layer, state, undefined), status: 'draft' as const, version: 1, createdAt: at, updatedAt: at, release: { baseline: route.defaultParams } };
      const experiment = parseOrThrow(Experiment, started(draft, at));
      checkCanRun(experiment, state);
      const expect = { [def.key]: 0, ...versionsOf(related(state, experiment)) };
      try {
        await this.store.commit({
          expect,
          experiments: [experiment],
          audit: [{ subject: subjectOf(def.key), action: 'release', actor, at, before: null, after: experiment }],
        });
        return experiment;
      } catch (err) {
        if (err instanceof StaleWriteError && err.key === def.key) throw alreadyExists(def.key);
        await this.retryOrThrow(err, attempt);
      }
    }
  }

  /** Replaces the definition; `ifMatch` is required (428 without it). */
  update(key: string, def: ExperimentDefinition, ifMatch: IfMatch, actor: Principal): Promise<Experiment> {
    if (ifMatch === undefined) throw createError('BUNRYU_PRECONDITION_REQUIRED', `PUT /v1/experiments/${key} needs If-Match: <version>`);
    if (def.key !== key) throw validationError([{ path: ['key'], message: `must be "${key}", the key in the URL` }]);
    return this.mutate(key, 'update', ifMatch, actor, true, (current, state) => {
      const s = state!;
      checkMetricRefs(def, s);
      checkRolloutPlan(def, current);
      const layer = def.layer ?? def.key;
      const next: Experiment = {
        ...def,
        layer,
        ...placeInLayer(def, layer, s, current),
        status: current.status,
        version: current.version + 1,
        createdAt: current.createdAt,
        updatedAt: this.now().toISOString(),
        ...(current.startedAt ? { startedAt: current.startedAt } : {}),
        ...(current.rolloutState && def.rollout ? { rolloutState: current.rolloutState } : {}),
        ...(current.weightsChangedAt ? { weightsChangedAt: current.weightsChangedAt } : {}),
        ...(current.phases ? { phases: current.phases } : {}),
        ...(current.release ? { release: current.release } : {}),
      };
      if (current.status !== 'draft') {
        assertAssignmentUnchanged(current, next);
        checkCanRun(next, s);
      }
      return next;
    });
  }

  start(key: string, ifMatch: IfMatch, actor: Principal): Promise<Experiment> {
    return this.mutate(key, 'start', ifMatch, actor, true, (current, state) => {
      const next = started(current, this.now().toISOString());
      checkCanRun(next, state!);
      return next;
    });
  }

  pause(key: string, ifMatch: IfMatch, actor: Principal, autopilot?: AutopilotContext): Promise<Experiment> {
    return this.mutate(key, 'pause', ifMatch, actor, false, (current) => takenOver({ ...current, status: 'paused' }, actor), autopilot);
  }

  archive(key: string, ifMatch: IfMatch, actor: Principal): Promise<Experiment> {
    return this.mutate(key, 'archive', ifMatch, actor, false, (current) => ({ ...current, status: 'archived' }));
  }

  /** A release that was promoted gives the route back the default params it had before (ADR 0011). */
  rollback(key: string, ifMatch: IfMatch, actor: Principal, autopilot?: AutopilotContext): Promise<Experiment> {
    return this.mutate(key, 'rollback', ifMatch, actor, 'release', (current) => takenOver({ ...current, status: 'rolled_back' }, actor), autopilot);
  }

  /** Hands a guarded rollout to a person (`paused`) or back to the autopilot (`active`). */
  setAutopilot(key: string, mode: 'active' | 'paused', ifMatch: IfMatch, actor: Principal): Promise<Experiment> {
    return this.mutate(key, 'autopilot', ifMatch, actor, false, (current) => {
      if (!current.rollout || !current.rolloutState) {
        throw createError('BUNRYU_INVALID_TRANSITION', `Experiment ${key} has no guarded rollout running (start an experiment with a rollout plan)`, { field: 'rollout' });
      }
      if (mode === 'paused') return { ...current, rolloutState: { ...current.rolloutState, autopilot: mode } };
      // A person may have ramped meanwhile: the autopilot goes on from the step whose weights are
      // in effect, so its next ramp never lowers a treatment's weight (units back to control).
      const weights = current.variants.map((v) => hundredths(v.weight));
      const matches = current.rollout.steps.map((s, i) => (current.variants.every((v, j) => s.weights[v.key] !== undefined && hundredths(s.weights[v.key]!) === weights[j]) ? i : -1)).filter((i) => i >= 0);
      if (matches.length === 0) {
        throw createError('BUNRYU_INVALID_TRANSITION', `Experiment ${key}'s weights (${current.variants.map((v) => `${v.key} ${v.weight}`).join(', ')}) match no step of its plan: ramp to one of them first`, { field: 'rollout' });
      }
      const step = matches.includes(current.rolloutState.step) ? current.rolloutState.step : matches[matches.length - 1]!;
      const stepStartedAt = step === current.rolloutState.step ? current.rolloutState.stepStartedAt : this.now().toISOString();
      return { ...current, rolloutState: { step, stepStartedAt, autopilot: mode } };
    });
  }

  /** Promoting a release also makes the winner's params the route's defaults, in the same commit (ADR 0011). */
  promote(key: string, variant: string, ifMatch: IfMatch, actor: Principal, autopilot?: AutopilotContext): Promise<Experiment> {
    return this.mutate(key, 'promote', ifMatch, actor, 'release', (current) => {
      if (!current.variants.some((v) => v.key === variant)) {
        throw validationError([{ path: ['variant'], message: `unknown variant "${variant}" (variants: ${current.variants.map((v) => v.key).join(', ')})` }]);
      }
      const next: Experiment = { ...current, status: 'released', releasedVariant: variant, releasedAt: this.now().toISOString() };
      return takenOver(next, actor);
    }, autopilot);
  }

  /** Sets the weights of the named variants; the others keep theirs, and all must sum to 100. */
  ramp(key: string, weights: Readonly<Record<string, number>>, ifMatch: IfMatch, actor: Principal, autopilot?: AutopilotContext): Promise<Experiment> {
    return this.mutate(key, 'ramp', ifMatch, actor, false, (current) => {
      const known = new Set(current.variants.map((v) => v.key));
      const unknown = Object.keys(weights).filter((k) => !known.has(k));
      if (unknown.length > 0) throw validationError(unknown.map((k) => ({ path: ['weights', k], message: `unknown variant "${k}"` })));
      const variants = current.variants.map((v) => (weights[v.key] === undefined ? v : { ...v, weight: weights[v.key]! }));
      const total = variants.reduce((sum, v) => sum + hundredths(v.weight), 0);
      if (total !== 100 * 100) {
        throw validationError([{ path: ['weights'], message: `the variants' weights must sum to exactly 100 (they would sum to ${total / 100})` }]);
      }
      const changed = variants.some((v, i) => v.weight !== current.variants[i]!.weight);
      const at = this.now().toISOString();
      const next = changed ? { ...current, variants, weightsChangedAt: at, phases: withNewPhase(current, { variants }, at) } : { ...current, variants };
      if (autopilot?.toStep !== undefined && current.rolloutState) return { ...next, rolloutState: { ...current.rolloutState, step: autopilot.toStep, stepStartedAt: at } };
      return takenOver(next, actor);
    }, autopilot);
  }

  private async mutate(
    key: string,
    action: ExperimentAction,
    ifMatch: IfMatch,
    actor: Principal,
    needsState: boolean | 'release',
    apply: Mutation,
    autopilot?: AutopilotContext,
  ): Promise<Experiment> {
    for (let attempt = 1; ; attempt++) {
      // Only changes that widen an experiment's footprint (start, edit) need the other experiments;
      // promoting or rolling back a release needs its route.
      const state = needsState ? await this.store.load() : undefined;
      const current = state ? state.experiments.find((e) => e.key === key) : await this.store.getExperiment(key);
      if (!current) throw notFound(key);
      const routes = needsState === 'release' && current.release ? state!.routes : undefined;
      checkIfMatch(key, ifMatch, current.version);
      assertAllowed(action, key, current.status);
      const at = this.now().toISOString();
      const applied = apply(current, state);
      let next = parseOrThrow(Experiment, { ...applied, status: LEADS_TO[action] ?? applied.status, version: current.version + 1, updatedAt: at });
      const entry: AuditInput = { subject: subjectOf(key), action, actor, at, before: current, after: next, ...(autopilot ? { decision: autopilot.decision } : {}) };
      const side = routes ? releaseEffects(current, next, routes, entry) : { routes: [], audit: [] };
      if (side.promoted) next = parseOrThrow(Experiment, { ...next, release: { ...next.release!, promoted: side.promoted } });
      entry.after = next;
      const expect = { ...(state && needsState === true ? versionsOf(related(state, next)) : {}), [key]: current.version };
      try {
        // The route is written as read plus the release's keys: if it moved meanwhile, read again.
        const expectRoutes = Object.fromEntries(side.routes.map((r) => [r.key, JSON.stringify(routes!.find((o) => o.key === r.key))]));
        await this.store.commit({ expect, expectRoutes, experiments: [next], routes: side.routes, audit: [entry, ...side.audit] });
        return next;
      } catch (err) {
        if (err instanceof StaleWriteError && err.key === key && ifMatch !== undefined) throw stale(key, err.actual);
        await this.retryOrThrow(err, attempt);
      }
    }
  }

  private async retryOrThrow(err: unknown, attempt: number): Promise<void> {
    if (!(err instanceof StaleWriteError)) throw err;
    if (attempt >= this.maxAttempts) {
      throw createError('BUNRYU_VERSION_MISMATCH', `Experiment ${err.key} kept changing under ${attempt} attempts; try again`);
    }
    // Jittered backoff, so writers that collided do not collide again in lockstep.
    await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 ** attempt)));
  }
}

/**
 * Starting: running, with a guarded rollout at its first step (the autopilot driving) and the
 * first phase recorded when it had never run.
 */
function started(current: Experiment, at: string): Experiment {
  let next: Experiment = { ...current, status: 'running', startedAt: current.startedAt ?? at };
  if (current.rollout && !current.rolloutState) {
    const first = current.rollout.steps[0]!.weights;
    next = { ...next, variants: current.variants.map((v) => ({ ...v, weight: first[v.key]! })), weightsChangedAt: at, rolloutState: { step: 0, stepStartedAt: at, autopilot: 'active' } };
  }
  if (!current.startedAt) next = { ...next, phases: [{ startedAt: at, weights: Object.fromEntries(next.variants.map((v) => [v.key, v.weight])) }] };
  return next;
}

/**
 * What promoting or rolling back a release also changes (ADR 0011), in the same commit so a
 * gateway never sees one without the other:
 * - promote: the winner's params are merged into the route's `defaultParams`, remembering what
 *   those keys held before;
 * - rollback of a promoted release: each key it wrote that still holds its value gets its old
 *   value back (or goes away); a key changed since by someone else keeps that newer value.
 * A rollback before promotion changes nothing: control was the route's own behaviour.
 */
function releaseEffects(current: Experiment, next: Experiment, routes: readonly Route[], cause: AuditInput): SideEffects & { promoted?: NonNullable<ReleaseInfo['promoted']> } {
  const none = { routes: [], audit: [] };
  const route = routes.find((r) => r.key === current.route);
  if (!route) return none;
  const routeEntry = (action: string, after: Route): AuditInput => ({
    subject: `route:${route.key}`,
    action,
    actor: cause.actor,
    at: cause.at,
    before: route,
    after,
    ...(cause.decision !== undefined ? { decision: cause.decision } : {}),
  });
  if (next.status === 'released') {
    const params = next.variants.find((v) => v.key === next.releasedVariant)!.params;
    const before: Params = {};
    for (const k of Object.keys(params)) if (Object.hasOwn(route.defaultParams, k)) before[k] = route.defaultParams[k];
    const promoted = { variant: next.releasedVariant!, params, before };
    if (Object.keys(params).length === 0) return { ...none, promoted };
    const after: Route = { ...route, defaultParams: { ...route.defaultParams, ...params }, updatedAt: cause.at };
    return { routes: [after], audit: [routeEntry(`release:${current.key}`, after)], promoted };
  }
  const promoted = current.release?.promoted;
  if (next.status !== 'rolled_back' || current.status !== 'released' || !promoted) return none;
  const defaults: Params = { ...route.defaultParams };
  let restored = 0;
  for (const [k, v] of Object.entries(promoted.params)) {
    if (JSON.stringify(defaults[k]) !== JSON.stringify(v)) continue;
    if (Object.hasOwn(promoted.before, k)) defaults[k] = promoted.before[k];
    else delete defaults[k];
    restored++;
  }
  if (restored === 0) return none;
  const after: Route = { ...route, defaultParams: defaults, updatedAt: cause.at };
  return { routes: [after], audit: [routeEntry(`rollback:${current.key}`, after)] };
}

export function subjectOf(key: string): string {
  return `experiment:${key}`;
}

/**
 * A person's ramp, pause, promote or rollback of a guarded rollout takes it over: the autopilot
 * stops acting on it until someone hands it back (POST …/rollout/resume).
 */
function takenOver(next: Experiment, actor: Principal): Experiment {
  if (actor === AUTOPILOT || !next.rolloutState || next.rolloutState.autopilot === 'paused') return next;
  return { ...next, rolloutState: { ...next.rolloutState, autopilot: 'paused' } };
}

/** A plan fits the variants; once a rollout has started, it keeps its plan and the steps behind it (SPEC §10). */
function checkRolloutPlan(def: ExperimentDefinition, current: Experiment | undefined): void {
  const keys = def.variants.map((v) => v.key);
  if (def.rollout) {
    const issues = current?.rollout && current.rolloutState ? rolloutEditIssues(current.rollout, def.rollout, current.rolloutState.step, keys) : rolloutPlanIssues(def.rollout, keys);
    if (issues.length > 0) throw validationError(issues);
  }
  if (current?.rolloutState && !def.rollout) {
    throw validationError([{ path: ['rollout'], message: 'a guarded rollout has started: its plan can be edited but not removed (pause the autopilot to drive it by hand)' }]);
  }
  if (current && current.status !== 'draft' && !current.rollout && def.rollout) {
    throw validationError([{ path: ['rollout'], message: 'a plan is given before the experiment starts (start a new experiment, or POST /v1/releases, for a guarded rollout)' }]);
  }
}

function checkIfMatch(key: string, ifMatch: IfMatch, version: number): void {
  if (ifMatch === undefined || ifMatch === '*' || ifMatch.includes(version)) return;
  throw stale(key, version);
}

function stale(key: string, version: number) {
  return createError('BUNRYU_VERSION_MISMATCH', `Experiment ${key} is at version ${version}; read it again and retry`, { version });
}

function notFound(key: string) {
  return createError('BUNRYU_NOT_FOUND', `No experiment ${key}`);
}

function alreadyExists(key: string) {
  return createError('BUNRYU_ALREADY_EXISTS', `Experiment ${key} already exists`, { key });
}

/** Experiments that could run beside this one: its validation depends on their versions. */
function related(state: StoreState, e: Experiment): Experiment[] {
  return state.experiments.filter((o) => o.key !== e.key && RESERVES_RANGE.includes(o.status) && (o.layer === e.layer || o.route === e.route));
}

function versionsOf(experiments: readonly Experiment[]): Record<string, number> {
  return Object.fromEntries(experiments.map((e) => [e.key, e.version]));
}

function checkMetricRefs(def: ExperimentDefinition, state: StoreState): void {
  const known = new Set([...Object.keys(BUILT_IN_METRICS), ...state.metrics.map((m) => m.key)]);
  const issues: { path: (string | number)[]; message: string }[] = [];
  const check = (key: string | undefined, path: (string | number)[]) => {
    if (key !== undefined && !known.has(key)) issues.push({ path, message: `unknown metric "${key}": define it with PUT /v1/metrics/${key}` });
  };
  check(def.metrics.primary, ['metrics', 'primary']);
  (def.metrics.secondary ?? []).forEach((m, i) => check(m, ['metrics', 'secondary', i]));
  def.metrics.guardrails.forEach((g, i) => check(g, ['metrics', 'guardrails', i]));
  if (issues.length > 0) throw validationError(issues);
}

/** What a running (or paused, about to run again) experiment needs: its route, a free range, no param clash. */
function checkCanRun(e: Experiment, state: StoreState): void {
  if (!state.routes.some((r) => r.key === e.route)) {
    throw validationError([{ path: ['route'], message: `no route "${e.route}": define it with PUT /v1/routes/${e.route} first` }]);
  }
  assertFree(state, e.layer, e.key, e.allocation);
  if (e.status !== 'running') return;
  const conflict = findParamConflict(e, state.experiments);
  if (conflict) {
    throw createError(
      'BUNRYU_PARAM_CONFLICT',
      `Experiment ${conflict.experiment} (another layer, same route ${e.route}) already sets parameter "${conflict.param}"`,
      conflict,
    );
  }
}

/**
 * Once an experiment has started, who gets which variant changes only through ramp, promote and
 * rollback (releaser actions that keep assignments stable): an edit may not reshuffle units.
 */
function assertAssignmentUnchanged(current: Experiment, next: Experiment): void {
  const fields: string[] = [];
  if (next.route !== current.route) fields.push('route');
  if (next.layer !== current.layer) fields.push('layer');
  if (next.salt !== current.salt) fields.push('salt');
  if (next.allocation.start !== current.allocation.start || next.allocation.end !== current.allocation.end) fields.push('trafficPercent');
  if (next.variants.length !== current.variants.length || next.variants.some((v, i) => v.key !== current.variants[i]!.key)) fields.push('variants');
  else next.variants.forEach((v, i) => v.weight !== current.variants[i]!.weight && fields.push(`variants.${i}.weight`));
  if (fields.length > 0) {
    throw createError(
      'BUNRYU_INVALID_TRANSITION',
      `${fields[0]}: cannot change on a ${current.status} experiment (use ramp to change weights)`,
      { fields: fields.map((path) => ({ path, message: `cannot change once the experiment has started` })) },
    );
  }
}
