import type { AssignmentRef, Event, ExposureContext } from '@bunryu/core';

/** experiment → variant → `{"experiment":…,"variant":…}`, serialized once per pair. */
const fragments = new Map<string, Map<string, string>>();
const MAX_EXPERIMENTS = 10_000;

/**
 * An event as JSON, equal to JSON.stringify(event) once parsed, and cheaper on what dominates an
 * exposure: its assignments (20 running experiments make 20 objects per request), each pair
 * serialized once and reused. Strings and attributes still go through JSON.stringify, so no
 * escaping is reimplemented here.
 */
export function eventJson(e: Event): string {
  let out = '{"eventId":' + JSON.stringify(e.eventId) + ',"type":' + JSON.stringify(e.type) + ',"ts":' + number(e.ts) + ',"unitId":' + JSON.stringify(e.unitId);
  if (e.route !== undefined) out += ',"route":' + JSON.stringify(e.route);
  if (e.requestId !== undefined) out += ',"requestId":' + JSON.stringify(e.requestId);
  out += ',"assignments":' + assignmentsJson(e.assignments);
  if (e.value !== undefined) out += ',"value":' + number(e.value);
  if (e.latencyMs !== undefined) out += ',"latencyMs":' + number(e.latencyMs);
  if (e.status !== undefined) out += ',"status":' + number(e.status);
  if (e.fallback !== undefined) out += ',"fallback":"' + e.fallback + '"';
  if (e.attributes !== undefined) out += ',"attributes":' + JSON.stringify(e.attributes);
  if (e.itemId !== undefined) out += ',"itemId":' + JSON.stringify(e.itemId);
  if (e.interleaving !== undefined) out += ',"interleaving":' + JSON.stringify(e.interleaving);
  if (e.shadow !== undefined) out += ',"shadow":' + JSON.stringify(e.shadow);
  if (e.catalogue !== undefined) out += ',"catalogue":"' + e.catalogue + '"';
  return flat(out + '}');
}

/**
 * `eventJson(exposureEvent(assignments, ctx, eventId))` for an `eventId` that is a UUID, from the
 * exposure's assignments already as JSON (`assignForwarding`'s `exposureAssignmentsJson`, made
 * from pieces serialized once per snapshot): the hot path writes one exposure per request. Null
 * when there is nothing to expose, as exposureEvent (a property test holds the two equal).
 */
export function exposureJson(assignmentsJson: string | null, ctx: ExposureContext, eventId: string): string | null {
  if (assignmentsJson === null) return null;
  // A UUID needs no escaping; the other strings may.
  let out = '{"eventId":"' + eventId + '","type":"exposure","ts":' + number(ctx.ts) + ',"unitId":' + JSON.stringify(ctx.unitId);
  out += ',"route":' + JSON.stringify(ctx.route) + ',"requestId":' + JSON.stringify(ctx.requestId);
  out += ',"assignments":' + assignmentsJson;
  if (ctx.latencyMs !== undefined) out += ',"latencyMs":' + number(ctx.latencyMs);
  if (ctx.status !== undefined) out += ',"status":' + number(ctx.status);
  if (ctx.fallback !== undefined) out += ',"fallback":"' + ctx.fallback + '"';
  if (ctx.attributes) {
    for (const _ in ctx.attributes) {
      out += ',"attributes":' + JSON.stringify(ctx.attributes);
      break;
    }
  }
  if (ctx.interleaving !== undefined) out += ',"interleaving":' + JSON.stringify(ctx.interleaving);
  return flat(out + '}');
}

/** One side of a shadow pair with its params and compared output already as JSON text. */
export interface ShadowSideJson {
  paramsJson: string;
  status: number;
  latencyMs: number;
  outputJson?: string;
}

export interface ShadowPairJson {
  eventId: string;
  ts: number;
  unitId: string;
  route: string;
  requestId: string;
  compare: string;
  primary: ShadowSideJson;
  shadow: ShadowSideJson;
}

/**
 * `eventJson` of the `shadow` event of a pair whose params and outputs are JSON text already: the
 * copy had to serialize the shadow's params for its header and its output for the size bound,
 * and the primary's params came serialized from the assignment.
 */
export function shadowJson(p: ShadowPairJson): string {
  let out = '{"eventId":' + JSON.stringify(p.eventId) + ',"type":"shadow","ts":' + number(p.ts) + ',"unitId":' + JSON.stringify(p.unitId);
  out += ',"route":' + JSON.stringify(p.route) + ',"requestId":' + JSON.stringify(p.requestId) + ',"assignments":[]';
  out += ',"shadow":{"compare":' + JSON.stringify(p.compare) + ',"primary":' + sideJson(p.primary) + ',"shadow":' + sideJson(p.shadow) + '}';
  return flat(out + '}');
}

function sideJson(s: ShadowSideJson): string {
  const out = '{"params":' + s.paramsJson + ',"status":' + number(s.status) + ',"latencyMs":' + number(s.latencyMs);
  return s.outputJson === undefined ? out + '}' : out + ',"output":' + s.outputJson + '}';
}

/**
 * Concatenation builds a rope of small string nodes; events wait in the queue for up to a flush
 * tick, and a young-generation GC copies every node of every rope it finds alive. Reading one
 * character makes V8 flatten the rope into one string, so only that is kept.
 */
function flat(s: string): string {
  s.charCodeAt(0);
  return s;
}

function number(n: number): string {
  return Number.isFinite(n) ? String(n) : 'null';
}

function assignmentsJson(list: readonly AssignmentRef[]): string {
  let out = '[';
  let first = true;
  for (let i = 0; i < list.length; i++) {
    const a = list[i]!;
    const { experiment, variant } = a;
    let byVariant = fragments.get(experiment);
    if (byVariant === undefined) {
      if (fragments.size >= MAX_EXPERIMENTS) fragments.clear();
      fragments.set(experiment, (byVariant = new Map()));
    }
    let fragment = byVariant.get(variant);
    if (fragment === undefined) byVariant.set(variant, (fragment = JSON.stringify({ experiment, variant })));
    out += (first ? '' : ',') + fragment;
    first = false;
  }
  return out + ']';
}
