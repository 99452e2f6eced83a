import type { AssignmentRef, Event } from '@bunryu/core';

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
  if (e.attributes !== undefined) out += ',"attributes":' + JSON.stringify(e.attributes);
  return out + '}';
}

function number(n: number): string {
  return Number.isFinite(n) ? String(n) : 'null';
}

function assignmentsJson(list: readonly AssignmentRef[]): string {
  if (list.length === 0) return '[]';
  let out = '[';
  for (let i = 0; i < list.length; i++) {
    const { experiment, variant } = list[i]!;
    let byVariant = fragments.get(experiment);
    if (byVariant === undefined) {
      if (fragments.size >= MAX_EXPERIMENTS) fragments.clear();
      fragments.set(experiment, (byVariant = new Map()));
    }
    let fragment = byVariant.get(variant);
    if (fragment === undefined) byVariant.set(variant, (fragment = JSON.stringify({ experiment, variant })));
    out += (i === 0 ? '' : ',') + fragment;
  }
  return out + ']';
}
