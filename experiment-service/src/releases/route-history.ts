import { createError, type Experiment, type Params, type Route } from '@bunryu/core';
import type { Principal } from '@bunryu/platform/auth';
import type { AuditEntry, ExperimentStore } from '../store/experiment-store.ts';

/** What served on a route after one config version: its defaults, the released overlays, the running splits. */
export interface Serving {
  defaultParams: Params;
  released: { experiment: string; variant: string; params: Params }[];
  running: { experiment: string; variants: { key: string; weight: number; params: Params }[] }[];
}

export interface RouteHistoryEntry {
  configVersion: number;
  at: string;
  actor: Principal;
  /** `autopilot` for the release autopilot's actions (with its decision), `person` otherwise. */
  decidedBy: 'person' | 'autopilot';
  decision?: unknown;
  changes: { subject: string; action: string; summary: string }[];
  serving: Serving;
}

export interface RouteHistory {
  route: string;
  entries: RouteHistoryEntry[];
}

/** Statuses that put an experiment in front of the route's traffic (SPEC §3). */
const SERVES = new Set(['running', 'released']);

/**
 * A route's history as one view (SPEC §12): every change that altered what the route serves —
 * its own defaults, and its experiments' starts, ramps, pauses, promotions and rollbacks — one
 * entry per config version, oldest first, with who or what decided and what served afterwards.
 * Built by replaying the audit log, so it says what gateways were given, not what was meant.
 */
export async function routeHistory(store: ExperimentStore, key: string): Promise<RouteHistory> {
  const state = await store.load();
  if (!state.routes.some((r) => r.key === key)) throw createError('BUNRYU_NOT_FOUND', `No route ${key}`);
  const subjects = [`route:${key}`, ...state.experiments.filter((e) => e.route === key).map((e) => `experiment:${e.key}`)];
  const entries = (await Promise.all(subjects.map((subject) => store.audit({ subject })))).flat();
  // Within one config version the experiment's change comes first: it is what caused the route's.
  const rank = (e: AuditEntry) => (e.subject.startsWith('route:') ? 1 : 0);
  entries.sort((a, b) => a.configVersion - b.configVersion || rank(a) - rank(b));

  let defaults: Params = {};
  const experiments = new Map<string, Experiment>();
  const out: RouteHistoryEntry[] = [];
  for (const entry of entries) {
    const isRoute = entry.subject.startsWith('route:');
    if (isRoute) defaults = (entry.after as Route).defaultParams;
    else experiments.set(entry.subject.slice('experiment:'.length), entry.after as Experiment);
    if (!isRoute && !servingChanged(entry)) continue;
    const change = { subject: entry.subject, action: entry.action, summary: summarize(entry) };
    const last = out[out.length - 1];
    if (last && last.configVersion === entry.configVersion) {
      last.changes.push(change);
      last.serving = serving(defaults, experiments);
      continue;
    }
    const autopilot = entry.actor.name === 'autopilot' && entry.actor.role === 'releaser';
    out.push({
      configVersion: entry.configVersion,
      at: entry.at,
      actor: entry.actor,
      decidedBy: autopilot ? 'autopilot' : 'person',
      ...(entry.decision !== undefined ? { decision: entry.decision } : {}),
      changes: [change],
      serving: serving(defaults, experiments),
    });
  }
  return { route: key, entries: out };
}

function servingChanged(entry: AuditEntry): boolean {
  const status = (v: unknown) => (v as Experiment | null)?.status;
  return SERVES.has(status(entry.before) ?? '') || SERVES.has(status(entry.after) ?? '');
}

function serving(defaultParams: Params, experiments: ReadonlyMap<string, Experiment>): Serving {
  const all = [...experiments.values()];
  return {
    defaultParams,
    released: all
      .filter((e) => e.status === 'released')
      .sort((a, b) => ((a.releasedAt ?? '') + a.key < (b.releasedAt ?? '') + b.key ? -1 : 1))
      .map((e) => ({ experiment: e.key, variant: e.releasedVariant!, params: e.variants.find((v) => v.key === e.releasedVariant)?.params ?? {} })),
    running: all
      .filter((e) => e.status === 'running')
      .sort((a, b) => (a.key < b.key ? -1 : 1))
      .map((e) => ({ experiment: e.key, variants: e.variants.map((v) => ({ key: v.key, weight: v.weight, params: v.params })) })),
  };
}

function summarize(entry: AuditEntry): string {
  const json = (p: unknown) => JSON.stringify(p);
  if (entry.subject.startsWith('route:')) {
    const after = (entry.after as Route).defaultParams;
    const [kind, experiment] = entry.action.split(':');
    if (kind === 'release') return `defaults became ${json(after)}: ${experiment} was promoted`;
    if (kind === 'rollback') return `defaults went back to ${json(after)}: ${experiment} was rolled back`;
    return `route ${entry.action === 'create' ? 'created' : 'updated'}; defaults ${json(after)}`;
  }
  const e = entry.after as Experiment;
  const weights = e.variants.map((v) => `${v.key} ${v.weight}%`).join(', ');
  const treatment = e.variants.slice(1).map((v) => `${v.key} ${json(v.params)}`).join(', ');
  switch (entry.action) {
    case 'release':
      return `release ${e.key} started: ${treatment} against the route's behaviour (${weights})`;
    case 'start':
      return `${e.key} started (${weights})`;
    case 'ramp':
      return `${e.key} ramped to ${weights}`;
    case 'promote':
      return `${e.key} promoted ${e.releasedVariant} ${json(e.variants.find((v) => v.key === e.releasedVariant)?.params ?? {})}`;
    case 'rollback':
      return `${e.key} rolled back`;
    case 'pause':
      return `${e.key} paused`;
    case 'archive':
      return `${e.key} archived`;
    default:
      return `${e.key}: ${entry.action}`;
  }
}
