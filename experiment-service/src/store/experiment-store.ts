import type { EventDeclaration, Experiment, Holdout, MetricDefinition, Route } from '@bunryu/core';
import type { Principal } from '@bunryu/platform/auth';

/**
 * The ExperimentStore port: everything the experiment-service keeps, written in atomic,
 * version-checked changes. Two adapters: Redis (shared by every replica) and a file store (the
 * embedded default). One contract suite (test/experiment-store.contract.test.ts) runs on both.
 */
export interface ExperimentStore {
  /** Everything at one config version, read atomically. */
  load(): Promise<StoreState>;
  getExperiment(key: string): Promise<Experiment | undefined>;
  /** The config version: 0 before the first change, +1 on every committed change. */
  version(): Promise<number>;
  /**
   * Applies a change atomically: every `expect`ed experiment must still be at its version (0: must
   * not exist), else nothing is written and a StaleWriteError names the first that moved. The
   * config version is incremented, the audit entries appended, and every process's `onChange`
   * listeners learn the new version.
   */
  commit(change: Change): Promise<{ version: number }>;
  /** Audit entries oldest first: all of them, or one subject's (`experiment:<key>`, `route:<key>`…). */
  audit(query?: { subject?: string; limit?: number }): Promise<AuditEntry[]>;
  /**
   * Calls `listener` after a change committed by any process (the file store: this one), with
   * the new config version, or -1 when changes may have been missed (a reconnect). Resolves,
   * with the function that unsubscribes, once every later change will be heard.
   */
  onChange(listener: (version: number) => void): Promise<() => void>;
  /** Resolves when the backing store answers (for /readyz). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface StoreState {
  version: number;
  experiments: Experiment[];
  routes: Route[];
  /** User-defined metrics (the built-ins are not stored). */
  metrics: UserMetric[];
  holdout: Holdout | null;
  /** The event catalogue (SPEC §16), every declaration whatever its status. */
  events: EventDeclaration[];
}

export type UserMetric = MetricDefinition & { key: string };

export interface Change {
  expect?: Readonly<Record<string, number>>;
  experiments?: readonly Experiment[];
  routes?: readonly Route[];
  metrics?: readonly UserMetric[];
  holdout?: Holdout;
  events?: readonly EventDeclaration[];
  audit: readonly AuditInput[];
}

/** `subject` is `experiment:<key>`, `route:<key>`, `metric:<key>`, `event:<type>` or `holdout`. */
export interface AuditInput {
  subject: string;
  action: string;
  actor: Principal;
  at: string;
  before: unknown;
  after: unknown;
  /** Why an automatic action was taken: the autopilot's decision (reason, message, evidence). */
  decision?: unknown;
}

export interface AuditEntry extends AuditInput {
  /** The config version this change produced. */
  configVersion: number;
}

export class StaleWriteError extends Error {
  override name = 'StaleWriteError';
  constructor(
    readonly key: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`experiment ${key} is at version ${actual}, not ${expected}`);
  }
}

/** Entries serialize with `configVersion` first: the Redis adapter prepends it inside its script. */
export function auditEntry(input: AuditInput, configVersion: number): AuditEntry {
  const entry: AuditEntry = { configVersion, subject: input.subject, action: input.action, actor: input.actor, at: input.at, before: input.before, after: input.after };
  if (input.decision !== undefined) entry.decision = input.decision;
  return entry;
}

/**
 * Deep-freezes what a store hands out and keeps: loads share unchanged objects, and snapshot
 * serialization caches them by identity, so a caller that mutated one would corrupt both.
 */
export function frozen<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) frozen(v);
  }
  return value;
}
