import type { TargetingRule } from './schemas.ts';

export type Attributes = Readonly<Record<string, unknown>>;

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

export type CompiledTargeting = (attributes: Attributes) => boolean;

const always: CompiledTargeting = () => true;

/** Compiles rules once per snapshot into one predicate (`in`/`nin` become Set lookups). */
export function compileTargeting(rules: readonly TargetingRule[]): CompiledTargeting {
  if (rules.length === 0) return always;
  const checks = rules.map(compileRule);
  if (checks.length === 1) return checks[0]!;
  return (attributes) => {
    for (let i = 0; i < checks.length; i++) if (!checks[i]!(attributes)) return false;
    return true;
  };
}

function compileRule(rule: TargetingRule): CompiledTargeting {
  const name = rule.attribute;
  if ((rule.op === 'in' || rule.op === 'nin') && Array.isArray(rule.value)) {
    const set = new Set<unknown>(rule.value);
    const want = rule.op === 'in';
    return (attributes) => {
      const actual = attributes[name];
      return actual !== undefined && actual !== null && set.has(actual) === want;
    };
  }
  return (attributes) => matchesRule(rule, attributes[name]);
}
