import type { Assignment, Event } from './schemas.ts';

export interface ExposureContext {
  unitId: string;
  route: string;
  requestId: string;
  ts: number;
  latencyMs?: number;
  status?: number;
  fallback?: 'route' | 'model';
  attributes?: Record<string, string | number | boolean>;
  /** An interleaved request's merged list and the variant of each item (SPEC §13). */
  interleaving?: { experiment: string; items: string[]; teams: string[] };
}

/**
 * The exposure event for one request (SPEC §5): one event listing every running, non-forced
 * assignment, or none when there is nothing to analyse. Forced and holdout units are never
 * exposed, which is what keeps them out of the analysis.
 */
export function exposureEvent(assignments: readonly Assignment[], ctx: ExposureContext, eventId: string): Event | null {
  const analysed = exposedAssignments(assignments);
  if (analysed.length === 0) return null;
  const event: Event = { eventId, type: 'exposure', ts: ctx.ts, unitId: ctx.unitId, route: ctx.route, requestId: ctx.requestId, assignments: analysed };
  if (ctx.latencyMs !== undefined) event.latencyMs = ctx.latencyMs;
  if (ctx.status !== undefined) event.status = ctx.status;
  if (ctx.fallback !== undefined) event.fallback = ctx.fallback;
  if (ctx.attributes && Object.keys(ctx.attributes).length > 0) event.attributes = ctx.attributes;
  if (ctx.interleaving !== undefined) event.interleaving = ctx.interleaving;
  return event;
}

/** What an exposure lists of a request's assignments: the non-forced ones, as `{experiment, variant}`. */
export function exposedAssignments(assignments: readonly Assignment[]): { experiment: string; variant: string }[] {
  return assignments.filter((a) => !a.forced).map((a) => ({ experiment: a.experiment, variant: a.variant }));
}

/** `exp=variant,exp2=variant` (SPEC §4 `x-ab-assignments`). */
export function formatAssignmentsHeader(assignments: readonly Pick<Assignment, 'experiment' | 'variant'>[]): string {
  let out = '';
  for (const a of assignments) out += (out ? ',' : '') + a.experiment + '=' + a.variant;
  return out;
}
