import { EventDeclaration, EventSchemaInput, createError, parseOrThrow, validationError, type EventPolicy, type EventSchema, type MetricDefinition } from '@bunryu/core';
import type { Principal } from '@bunryu/platform/auth';
import type { ExperimentStore } from '../store/experiment-store.ts';

/**
 * The event catalogue (SPEC §16): editors propose declarations, reviewers (or admins) approve
 * them. Every proposal and approval is one audited store change, so the audit log holds the whole
 * review history of each type (`event:<type>`).
 */
export class EventCatalogue {
  constructor(
    private readonly store: ExperimentStore,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async list(): Promise<EventDeclaration[]> {
    const { events } = await this.store.load();
    return [...events].sort((a, b) => (a.type < b.type ? -1 : 1));
  }

  async get(type: string): Promise<EventDeclaration> {
    const declaration = (await this.store.load()).events.find((e) => e.type === type);
    if (!declaration) throw createError('BUNRYU_NOT_FOUND', `No event ${type} is declared`);
    return declaration;
  }

  /**
   * A new declaration, or a change to one, starts `proposed`; the last approved definition stays
   * in force until a reviewer approves the new one. Proposing what is already there changes
   * nothing (a retried PUT is not a new review).
   */
  async propose(type: string, input: EventSchema, actor: Principal): Promise<{ declaration: EventDeclaration; created: boolean }> {
    const before = (await this.store.load()).events.find((e) => e.type === type) ?? null;
    const definition = parseOrThrow(EventSchemaInput, input);
    if (before && sameDefinition(definitionOf(before), definition)) return { declaration: before, created: false };
    const at = this.now().toISOString();
    const declaration = parseOrThrow(EventDeclaration, {
      ...definition,
      type,
      status: 'proposed',
      version: (before?.version ?? 0) + 1,
      proposedBy: actor.name,
      updatedAt: at,
      ...(before?.approvedBy ? { approvedBy: before.approvedBy, approvedAt: before.approvedAt } : {}),
      approved: before?.approved ?? null,
    });
    await this.store.commit({
      events: [declaration],
      audit: [{ subject: `event:${type}`, action: before ? 'propose-change' : 'propose', actor, at, before, after: declaration }],
    });
    return { declaration, created: before === null };
  }

  /** `version`, when given (If-Match), must be the proposal the reviewer read. */
  async approve(type: string, actor: Principal, version?: readonly number[] | '*'): Promise<EventDeclaration> {
    const before = await this.get(type);
    if (Array.isArray(version) && !version.includes(before.version)) {
      throw createError('BUNRYU_VERSION_MISMATCH', `${type} is at version ${before.version}; read it again before approving`, { version: before.version });
    }
    if (before.status === 'approved') throw createError('BUNRYU_INVALID_TRANSITION', `${type} is already approved`, { status: before.status });
    const at = this.now().toISOString();
    const declaration: EventDeclaration = { ...before, status: 'approved', approvedBy: actor.name, approvedAt: at, approved: definitionOf(before) };
    await this.store.commit({
      events: [declaration],
      audit: [{ subject: `event:${type}`, action: 'approve', actor, at, before, after: declaration }],
    });
    return declaration;
  }

  /**
   * Whether a metric may name `event` (SPEC §16: only declared events once the catalogue is
   * strict): under `strict` an event type with no approved declaration is refused; otherwise it
   * is allowed with a warning the caller passes on.
   */
  async checkMetricEvents(refs: readonly { path: string; event: string }[], policy: EventPolicy): Promise<{ path: string; message: string }[]> {
    if (policy === 'open') return [];
    const declared = new Map((await this.store.load()).events.map((e) => [e.type, e]));
    const problems = refs
      .filter((r) => !declared.get(r.event)?.approved)
      .map((r) => ({ path: r.path, message: declared.has(r.event) ? `event ${r.event} is proposed but not approved` : `event ${r.event} is not declared` }));
    if (problems.length > 0 && policy === 'strict') {
      throw validationError(problems.map((p) => ({ path: p.path.split('.'), message: `${p.message} (BUNRYU_EVENT_POLICY is strict)` })));
    }
    return problems;
  }
}

/** The events a metric definition names, with the field that names each. */
export function metricEventRefs(definition: MetricDefinition): { path: string; event: string }[] {
  if (definition.type === 'ratio') {
    return [
      { path: 'numerator.event', event: definition.numerator.event },
      { path: 'denominator.event', event: definition.denominator.event },
    ];
  }
  return [{ path: 'event', event: definition.event }];
}

export function definitionOf(d: EventDeclaration): EventSchema {
  return { description: d.description, owner: d.owner, attributes: d.attributes, ...(d.value ? { value: d.value } : {}) };
}

function sameDefinition(a: EventSchema, b: EventSchema): boolean {
  return canonical(a) === canonical(b);
}

/** JSON with sorted keys, so attribute order does not make a change. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}
