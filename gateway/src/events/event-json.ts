import type { Assignment, AssignmentRef, Event, ExposureContext } from '@bunryu/core';

/** experiment → variant → `{"experiment":…,"variant":…}`, serialized once per pair. */
const fragments = new Map<string, Map<string, string>>();
const MAX_EXPERIMENTS = 10_000;

/**
 * The pieces of the event being written, joined once at the end. Concatenation would leave a
 * string node per piece for the GC, and events wait in the queue for up to a flush tick, where
 * a young-generation GC copies every node it finds alive; a join makes one flat string. Reused
 * by every call: serialization is synchronous.
 */
const pieces: string[] = [];

/**
 * An event as JSON, equal to JSON.stringify(event) once parsed, and cheaper on what dominates an
 * exposure: its assignments (20 running experiments make 20 objects per request), each pair
 * serialized once and reused. Strings and attributes still go through JSON.stringify, so no
 * escaping is reimplemented here.
 */
export function eventJson(e: Event): string {
  pieces.length = 0; // what a call that threw half way left behind
  pieces.push('{"eventId":', JSON.stringify(e.eventId), ',"type":', JSON.stringify(e.type), ',"ts":', number(e.ts), ',"unitId":', JSON.stringify(e.unitId));
  if (e.route !== undefined) pieces.push(',"route":', JSON.stringify(e.route));
  if (e.requestId !== undefined) pieces.push(',"requestId":', JSON.stringify(e.requestId));
  pieces.push(',"assignments":');
  pushAssignments(e.assignments, false);
  if (e.value !== undefined) pieces.push(',"value":', number(e.value));
  if (e.latencyMs !== undefined) pieces.push(',"latencyMs":', number(e.latencyMs));
  if (e.status !== undefined) pieces.push(',"status":', number(e.status));
  if (e.attributes !== undefined) pieces.push(',"attributes":', JSON.stringify(e.attributes));
  return joinPieces();
}

/**
 * `eventJson(exposureEvent(assignments, ctx, eventId))` without building the event and its copy of
 * every assignment: the hot path writes one exposure per request. Null when there is nothing to
 * expose, as exposureEvent (a property test holds the two equal).
 */
export function exposureJson(assignments: readonly Assignment[], ctx: ExposureContext, eventId: string): string | null {
  let analysed = false;
  for (let i = 0; i < assignments.length; i++) if (!assignments[i]!.forced) analysed = true;
  if (!analysed) return null;
  pieces.length = 0;
  pieces.push('{"eventId":', JSON.stringify(eventId), ',"type":"exposure","ts":', number(ctx.ts), ',"unitId":', JSON.stringify(ctx.unitId));
  pieces.push(',"route":', JSON.stringify(ctx.route), ',"requestId":', JSON.stringify(ctx.requestId), ',"assignments":');
  pushAssignments(assignments, true);
  if (ctx.latencyMs !== undefined) pieces.push(',"latencyMs":', number(ctx.latencyMs));
  if (ctx.status !== undefined) pieces.push(',"status":', number(ctx.status));
  if (ctx.attributes) {
    for (const _ in ctx.attributes) {
      pieces.push(',"attributes":', JSON.stringify(ctx.attributes));
      break;
    }
  }
  return joinPieces();
}

function joinPieces(): string {
  pieces.push('}');
  const out = pieces.join('');
  pieces.length = 0;
  return out;
}

function number(n: number): string {
  return Number.isFinite(n) ? String(n) : 'null';
}

function pushAssignments(list: readonly (AssignmentRef | Assignment)[], skipForced: boolean): void {
  pieces.push('[');
  let first = true;
  for (let i = 0; i < list.length; i++) {
    const a = list[i]!;
    if (skipForced && (a as Assignment).forced) continue;
    const { experiment, variant } = a;
    let byVariant = fragments.get(experiment);
    if (byVariant === undefined) {
      if (fragments.size >= MAX_EXPERIMENTS) fragments.clear();
      fragments.set(experiment, (byVariant = new Map()));
    }
    let fragment = byVariant.get(variant);
    if (fragment === undefined) byVariant.set(variant, (fragment = JSON.stringify({ experiment, variant })));
    if (!first) pieces.push(',');
    pieces.push(fragment);
    first = false;
  }
  pieces.push(']');
}
