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
  /**
   * Resolves when the backing store answers and still holds this store's data (for /readyz);
   * rejects with BUNRYU_NOT_READY saying why otherwise, e.g. when the data was lost.
   */
  ping(): Promise<void>;
  /** Everything the store holds, audit included, read atomically (`GET /v1/export`). */
  exportAll(): Promise<StoreExport>;
  /**
   * Writes an export into an empty store (config version 0, nothing in it) under a new epoch,
   * all or nothing, and makes it the store's data; a store that noticed it lost its data is
   * empty in this sense and becomes writable again. Rejects with BUNRYU_ALREADY_EXISTS otherwise.
   */
  importAll(data: StoreExport): Promise<{ version: number; epoch: string }>;
  close(): Promise<void>;
}

export interface StoreState {
  version: number;
  /**
   * The identity of the data: drawn when the store first starts empty, kept by every change and
   * replaced only by an import. A store that finds another epoch (or none) under it has lost its
   * data, e.g. Redis restarted without persistence, and refuses to carry on as if nothing happened.
   */
  epoch: string;
  experiments: Experiment[];
  routes: Route[];
  /** User-defined metrics (the built-ins are not stored). */
  metrics: UserMetric[];
  holdout: Holdout | null;
  /** The event catalogue (SPEC §16), every declaration whatever its status. */
  events: EventDeclaration[];
}

/** What `GET /v1/export` answers and `POST /v1/import` takes. */
export interface StoreExport {
  format: 1;
  epoch: string;
  version: number;
  /** Every experiment, drafts and finished ones included. */
  experiments: Experiment[];
  routes: Route[];
  metrics: UserMetric[];
  holdout: Holdout | null;
  /** The event catalogue, every declaration whatever its status. */
  events: EventDeclaration[];
  /** Every audit entry, oldest first. */
  audit: AuditEntry[];
}

/** Keys sorted, so an export is the same bytes whichever adapter wrote it. */
export function sortedExport(data: Omit<StoreExport, 'format'>): StoreExport {
  const byKey = (a: { key: string }, b: { key: string }) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  return {
    format: 1,
    epoch: data.epoch,
    version: data.version,
    experiments: [...data.experiments].sort(byKey),
    routes: [...data.routes].sort(byKey),
    metrics: [...data.metrics].sort(byKey),
    holdout: data.holdout,
    events: [...data.events].sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0)),
    audit: data.audit,
  };
}

export type UserMetric = MetricDefinition & { key: string };

export interface Change {
  expect?: Readonly<Record<string, number>>;
  /**
   * Routes that must still be exactly as read: the JSON text of each (`JSON.stringify` of the
   * route a load returned), or null for "must not exist". A moved one fails the change with a
   * StaleWriteError whose key is `route:<key>`.
   */
  expectRoutes?: Readonly<Record<string, string | null>>;
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

/** The audit log's retention, in either store: the newest entries kept, of the whole log and of each subject's. */
export const DEFAULT_AUDIT_MAX_ENTRIES = 100_000;

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
