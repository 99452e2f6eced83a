import { randomUUID } from 'node:crypto';
import { ClientEvent, assign, checkEvent, validationError, type AssignmentRef, type CatalogueViolation, type Event, type EventPolicy, type EventPolicySetting } from '@bunryu/core';
import type { LiveConfig } from '../config-source/snapshot-store.ts';

export interface RejectedEvent {
  index: number;
  reason: string;
  fields: { path: string; message: string }[];
}

export interface IngestResult {
  accepted: number;
  rejected: RejectedEvent[];
}

/** How events meet the catalogue (SPEC §16), and where each mismatch is counted. */
export interface EventPolicyCheck {
  setting: EventPolicySetting;
  /** Called once per mismatching event: `policy` says whether it was kept (warn) or rejected (strict). */
  onViolation(type: string, verdict: CatalogueViolation['verdict'], policy: Exclude<EventPolicy, 'open'>): void;
}

/** Everything open: what the gateway did before the catalogue, and the cheapest path. */
const ALL_OPEN: EventPolicySetting = { default: 'open', routes: {} };

function allOpen(setting: EventPolicySetting): boolean {
  if (setting.default !== 'open') return false;
  for (const route in setting.routes) if (setting.routes[route] !== 'open') return false;
  return true;
}

/**
 * Validates a batch of client events one by one (SPEC §4 `/v1/events`): an invalid event is
 * rejected with its index and reason, the valid ones are completed (eventId, ts) and tagged with
 * the unit's current assignments (SPEC §1 step 8), then handed to `publish`. Forced assignments
 * are left out, as they are from exposures, so override units stay out of the analysis.
 *
 * Then the event policy of its route (SPEC §16): under `strict` an event that does not match the
 * approved catalogue is rejected like an invalid one, with the field at fault; under `warn` it is
 * kept and marked `catalogue: "undeclared" | "invalid"` so the aggregator can show the share.
 */
export function ingestEvents(
  events: readonly unknown[],
  live: LiveConfig,
  publish: (key: string, event: Event) => void,
  now: number,
  policy: EventPolicyCheck | null = null,
): IngestResult {
  const setting = policy?.setting ?? ALL_OPEN;
  const checking = !allOpen(setting);
  const rejected: RejectedEvent[] = [];
  const prepared: Event[] = [];
  // Batches usually hold many events of few units: assign each (unit, route) once per call.
  const memo = new Map<string, AssignmentRef[]>();
  for (let index = 0; index < events.length; index++) {
    const parsed = ClientEvent.safeParse(events[index]);
    if (!parsed.success) {
      const error = validationError(parsed.error.issues, `events.${index}`);
      rejected.push({ index, reason: error.message, fields: (error.details as { fields: RejectedEvent['fields'] }).fields });
      continue;
    }
    const e = parsed.data;
    if (e.route !== undefined && !(e.route in live.snapshot.routes)) {
      const path = `events.${index}.route`;
      const message = `unknown route "${e.route}"`;
      rejected.push({ index, reason: `${path}: ${message}`, fields: [{ path, message }] });
      continue;
    }
    let mark: CatalogueViolation['verdict'] | undefined;
    if (checking) {
      const applies = e.route !== undefined ? (setting.routes[e.route] ?? setting.default) : setting.default;
      if (applies !== 'open') {
        const violation = checkEvent(live.eventChecks, e.type, e.attributes, e.value);
        if (violation !== null) {
          policy!.onViolation(e.type, violation.verdict, applies);
          if (applies === 'strict') {
            const path = `events.${index}.${violation.field}`;
            rejected.push({ index, reason: `${path}: ${violation.message}`, fields: [{ path, message: violation.message }] });
            continue;
          }
          mark = violation.verdict;
        }
      }
    }
    const event: Event = {
      eventId: e.eventId ?? randomUUID(),
      type: e.type,
      ts: e.ts ?? now,
      unitId: e.unitId,
      assignments: currentAssignments(live, e.unitId, e.route, e.attributes, memo),
    };
    if (e.route !== undefined) event.route = e.route;
    if (e.requestId !== undefined) event.requestId = e.requestId;
    if (e.value !== undefined) event.value = e.value;
    if (e.attributes !== undefined) event.attributes = e.attributes;
    if (e.itemId !== undefined) event.itemId = e.itemId;
    if (mark !== undefined) event.catalogue = mark;
    prepared.push(event);
  }
  // Nothing is published before the whole batch is judged, so a thrown error publishes nothing.
  for (const event of prepared) publish(event.unitId, event);
  return { accepted: prepared.length, rejected };
}

/** The event's route when it names one, else every route with running experiments. */
function currentAssignments(
  live: LiveConfig,
  unitId: string,
  route: string | undefined,
  attributes: Record<string, unknown> | undefined,
  memo: Map<string, AssignmentRef[]>,
): AssignmentRef[] {
  const memoKey = attributes === undefined ? `${route ?? ''}\u0000${unitId}` : null;
  if (memoKey !== null) {
    const hit = memo.get(memoKey);
    if (hit) return hit;
  }
  const routes = route !== undefined ? [route] : live.experimentRoutes;
  const out: AssignmentRef[] = [];
  for (const r of routes) {
    for (const a of assign(live.snapshot, r, unitId, attributes ?? {}).assignments) {
      if (!a.forced) out.push({ experiment: a.experiment, variant: a.variant });
    }
  }
  if (memoKey !== null) memo.set(memoKey, out);
  return out;
}
