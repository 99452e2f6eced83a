import type { TargetingRule } from './schemas.ts';

export type Attributes = Readonly<Record<string, unknown>>;

/** All rules must match. A missing attribute matches no rule, `exists` included (SPEC §3). */
export function matchesTargeting(rules: readonly TargetingRule[], attributes: Attributes): boolean {
  for (const rule of rules) if (!matchesRule(rule, attributes[rule.attribute])) return false;
  return true;
}

export function matchesRule(rule: TargetingRule, actual: unknown): boolean {
  if (actual === undefined || actual === null) return false;
  const { value } = rule;
  switch (rule.op) {
    case 'exists':
      return value !== false;
    case 'eq':
      return actual === value;
    case 'neq':
      return actual !== value;
    case 'in':
      return Array.isArray(value) && value.includes(actual as never);
    case 'nin':
      return Array.isArray(value) && !value.includes(actual as never);
    case 'gt':
      return isNumber(actual) && isNumber(value) && actual > value;
    case 'gte':
      return isNumber(actual) && isNumber(value) && actual >= value;
    case 'lt':
      return isNumber(actual) && isNumber(value) && actual < value;
    case 'lte':
      return isNumber(actual) && isNumber(value) && actual <= value;
  }
}

function isNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}
