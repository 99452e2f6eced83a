import { Experiment, ExperimentDefinition, defaultRolloutPlan, parseOrThrow, rolloutPlanIssues, validationError, type Params, type RolloutPlan } from '@bunryu/core';
import type { ReleaseRequest } from '../openapi/schemas.ts';

/** The variant keys of every release: control is the route's own behaviour, treatment the new params. */
export const RELEASE_VARIANTS = ['control', 'treatment'] as const;

/**
 * The experiment a release runs (SPEC §12, ADR 0011): `control` with empty params, so it serves
 * whatever the route serves now (its defaults and any released experiment on top), against
 * `treatment` with the given params, in the route's own release layer over all of its traffic,
 * under the given plan or SPEC §10's default one. Without `metrics`, the primary metric is that
 * of the route's most recently started experiment that has one (the team's measure of success),
 * and the plan's guardrails are always among the experiment's guardrails.
 */
export function releaseDefinition(request: ReleaseRequest, existing: readonly Experiment[]): ExperimentDefinition {
  const plan: RolloutPlan = request.plan ?? defaultRolloutPlan(RELEASE_VARIANTS);
  const issues = rolloutPlanIssues(plan, RELEASE_VARIANTS).map((i) => ({ path: ['plan', ...i.path.slice(1)], message: `${i.message} (a release has two variants: control and treatment)` }));
  if (issues.length > 0) throw validationError(issues);
  const primary = request.metrics?.primary ?? latestPrimary(existing.filter((e) => e.route === request.route));
  const guardrails = [...new Set([...(request.metrics?.guardrails ?? []), ...plan.guardrails.map((g) => g.metric)])];
  const key = request.key ?? freeKey(`${request.route}-release-${slug(request.params)}`, new Set(existing.map((e) => e.key)));
  const first = plan.steps[0]!.weights;
  return parseOrThrow(ExperimentDefinition, {
    key,
    name: request.name ?? `Release ${describe(request.params)} on ${request.route}`,
    hypothesis: `${describe(request.params)} does at least as well as the route's current behaviour`,
    route: request.route,
    layer: releaseLayer(request.route),
    trafficPercent: 100,
    variants: [
      { key: 'control', name: "The route's current behaviour", weight: first.control, params: {} },
      { key: 'treatment', name: describe(request.params), weight: first.treatment, params: request.params },
    ],
    metrics: { ...(primary ? { primary } : {}), guardrails },
    rollout: plan,
  });
}

/** One layer per route for its releases, so they never share units with its other experiments' layers. */
export function releaseLayer(route: string): string {
  return `release.${route}`.slice(0, 64);
}

function latestPrimary(experiments: readonly Experiment[]): string | undefined {
  return [...experiments]
    .filter((e) => e.metrics.primary && e.startedAt)
    .sort((a, b) => (a.startedAt! < b.startedAt! ? 1 : -1))[0]?.metrics.primary;
}

/** `version v3` for `{"version": "v3"}`; JSON for anything else. */
function describe(params: Params): string {
  return Object.entries(params)
    .map(([k, v]) => `${k} ${typeof v === 'string' || typeof v === 'number' ? String(v) : JSON.stringify(v)}`)
    .join(', ');
}

function slug(params: Params): string {
  const v = params.version;
  const raw = typeof v === 'string' || typeof v === 'number' ? String(v) : Object.keys(params).join('-');
  return raw.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'params';
}

/** `base`, else `base-2`, `base-3`…, within the 64 characters a key may have. */
function freeKey(base: string, taken: ReadonlySet<string>): string {
  const root = base.slice(0, 58).replace(/[-.]+$/, '');
  if (!taken.has(root)) return root;
  for (let n = 2; ; n++) if (!taken.has(`${root}-${n}`)) return `${root}-${n}`;
}
