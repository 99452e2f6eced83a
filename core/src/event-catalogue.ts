import { z } from 'zod';

/**
 * The event catalogue (SPEC §16): declared behaviour events, each with an attribute schema, an
 * owner and a review status. The schemas and the check of one event against its declaration live
 * here so the experiment-service (which stores them), the gateway (which enforces them) and the
 * generated client definitions agree on what "valid" means.
 */

export const EVENT_TYPE_PATTERN_TEXT = '^[a-z][a-z0-9_]{0,63}$';
const ATTRIBUTE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

export const EventAttributeType = z.enum(['string', 'number', 'boolean']);
export type EventAttributeType = z.infer<typeof EventAttributeType>;

export const EventAttributeSpec = z
  .strictObject({
    type: EventAttributeType,
    required: z.boolean().optional(),
    enum: z
      .array(z.union([z.string().max(256), z.number().finite()]))
      .min(1)
      .max(100)
      .optional(),
  })
  .superRefine((spec, ctx) => {
    if (!spec.enum) return;
    if (spec.type === 'boolean') ctx.addIssue({ code: 'custom', path: ['enum'], message: 'a boolean attribute takes no enum' });
    spec.enum.forEach((v, i) => {
      if (spec.type !== 'boolean' && typeof v !== spec.type) ctx.addIssue({ code: 'custom', path: ['enum', i], message: `must be a ${spec.type}, as the attribute` });
    });
    if (new Set(spec.enum).size !== spec.enum.length) ctx.addIssue({ code: 'custom', path: ['enum'], message: 'has repeated values' });
  });
export type EventAttributeSpec = z.infer<typeof EventAttributeSpec>;

/** The body of `PUT /v1/events/:type`: what a declaration says about its events. */
export const EventSchemaInput = z.strictObject({
  description: z.string().trim().min(1, 'must not be empty').max(1000),
  owner: z.string().trim().min(1, 'must not be empty').max(128),
  attributes: z
    .record(z.string().regex(ATTRIBUTE_NAME, 'must match ^[A-Za-z_][A-Za-z0-9_]{0,63}$'), EventAttributeSpec)
    .refine((a) => Object.keys(a).length <= 64, 'at most 64 attributes')
    .default({}),
  value: z.strictObject({ unit: z.string().trim().min(1, 'must not be empty').max(32) }).optional(),
});
export type EventSchemaInput = z.input<typeof EventSchemaInput>;
export type EventSchema = z.infer<typeof EventSchemaInput>;

export const EventDeclarationStatus = z.enum(['proposed', 'approved']);
export type EventDeclarationStatus = z.infer<typeof EventDeclarationStatus>;

/**
 * A stored declaration. `status` is that of the latest proposal; `approved` keeps the definition
 * last approved, which is what gateways enforce and clients are generated from, so proposing a
 * change never loosens or breaks the check before a reviewer accepts it.
 */
export const EventDeclaration = EventSchemaInput.extend({
  type: z.string(),
  status: EventDeclarationStatus,
  /** +1 on every proposal; an approval names the version it approves. */
  version: z.number().int().min(1),
  proposedBy: z.string(),
  updatedAt: z.string(),
  approvedBy: z.string().optional(),
  approvedAt: z.string().optional(),
  approved: EventSchemaInput.nullable(),
});
export type EventDeclaration = z.infer<typeof EventDeclaration>;

/** `open`: no check (SPEC §16's default); `warn`: accepted and counted; `strict`: rejected. */
export const EVENT_POLICIES = ['open', 'warn', 'strict'] as const;
export type EventPolicy = (typeof EVENT_POLICIES)[number];

/** Why an event does not match the approved catalogue; `field` is relative to the event. */
export interface CatalogueViolation {
  verdict: 'undeclared' | 'invalid';
  field: string;
  message: string;
}

export type EventCheck = (attributes: Readonly<Record<string, unknown>> | undefined, value: number | undefined) => CatalogueViolation | null;

/**
 * One closure per approved type, built once per snapshot: on the hot path an event costs a map
 * lookup plus a loop over its own attributes and the required ones.
 */
export function compileEventChecks(declarations: Readonly<Record<string, EventDeclaration>>): ReadonlyMap<string, EventCheck> {
  const checks = new Map<string, EventCheck>();
  for (const [type, declaration] of Object.entries(declarations)) {
    if (declaration.approved) checks.set(type, compileCheck(type, declaration.approved));
  }
  return checks;
}

function compileCheck(type: string, schema: EventSchema): EventCheck {
  const specs = new Map<string, { type: EventAttributeType; allowed: ReadonlySet<unknown> | null }>();
  const required: string[] = [];
  for (const [name, spec] of Object.entries(schema.attributes)) {
    specs.set(name, { type: spec.type, allowed: spec.enum ? new Set(spec.enum) : null });
    if (spec.required) required.push(name);
  }
  const takesValue = schema.value !== undefined;
  return (attributes, value) => {
    if (value !== undefined && !takesValue) return { verdict: 'invalid', field: 'value', message: `${type} declares no value` };
    if (attributes !== undefined) {
      for (const name in attributes) {
        const spec = specs.get(name);
        if (spec === undefined) return { verdict: 'invalid', field: `attributes.${name}`, message: `${type} declares no attribute ${name}` };
        const v = attributes[name];
        if (typeof v !== spec.type) return { verdict: 'invalid', field: `attributes.${name}`, message: `must be a ${spec.type}` };
        if (spec.allowed !== null && !spec.allowed.has(v)) return { verdict: 'invalid', field: `attributes.${name}`, message: `must be one of ${[...spec.allowed].map((a) => JSON.stringify(a)).join(', ')}` };
      }
    }
    for (const name of required) {
      if (attributes === undefined || !(name in attributes)) return { verdict: 'invalid', field: `attributes.${name}`, message: `is required for ${type}` };
    }
    return null;
  };
}

/** The violation of one behaviour event, or null when its type is approved and it matches. */
export function checkEvent(
  checks: ReadonlyMap<string, EventCheck>,
  type: string,
  attributes: Readonly<Record<string, unknown>> | undefined,
  value: number | undefined,
): CatalogueViolation | null {
  const check = checks.get(type);
  if (check === undefined) return { verdict: 'undeclared', field: 'type', message: `"${type}" is not an approved event type` };
  return check(attributes, value);
}

/**
 * `BUNRYU_EVENT_POLICY`: one policy for every event, optionally followed by per-route ones,
 * `warn,checkout:strict,search:open`. An event without a route takes the first.
 */
export interface EventPolicySetting {
  default: EventPolicy;
  routes: Readonly<Record<string, EventPolicy>>;
}

export function parseEventPolicy(text: string): { setting: EventPolicySetting } | { error: string } {
  const parts = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const isPolicy = (s: string): s is EventPolicy => (EVENT_POLICIES as readonly string[]).includes(s);
  const first = parts[0] ?? 'open';
  if (!isPolicy(first)) return { error: `must start with one of ${EVENT_POLICIES.join(', ')} (got "${first}")` };
  const routes: Record<string, EventPolicy> = {};
  for (const part of parts.slice(1)) {
    const [route, policy, extra] = part.split(':');
    if (!route || !policy || extra !== undefined || !isPolicy(policy)) return { error: `"${part}" is not route:${EVENT_POLICIES.join('|')}` };
    routes[route] = policy;
  }
  return { setting: { default: first, routes } };
}

/** The strictest policy any event may meet: what the metric catalogue answers to. */
export function strictestPolicy(setting: EventPolicySetting): EventPolicy {
  const all = [setting.default, ...Object.values(setting.routes)];
  return all.includes('strict') ? 'strict' : all.includes('warn') ? 'warn' : 'open';
}

export const eventPolicyEnv = z
  .string()
  .default('open')
  .transform((s, ctx) => {
    const r = parseEventPolicy(s);
    if ('error' in r) {
      ctx.addIssue({ code: 'custom', message: r.error });
      return z.NEVER;
    }
    return r.setting;
  });
