import { createError } from './errors.ts';
import type { ExperimentStatus } from './schemas.ts';

export type ExperimentAction = 'update' | 'start' | 'pause' | 'archive' | 'ramp' | 'promote' | 'rollback' | 'autopilot';

/**
 * Which statuses each action may start from (SPEC §3 statuses):
 * draft → running ↔ paused → released | rolled_back, and archived from anything not running.
 * A release can still be rolled back; a running experiment is paused or rolled back before it
 * is archived, so archiving never silently stops traffic.
 */
export const ALLOWED_FROM: Readonly<Record<ExperimentAction, readonly ExperimentStatus[]>> = {
  update: ['draft', 'running', 'paused'],
  ramp: ['draft', 'running', 'paused'],
  start: ['draft', 'paused'],
  pause: ['running'],
  promote: ['running', 'paused'],
  rollback: ['running', 'paused', 'released'],
  archive: ['draft', 'paused', 'released', 'rolled_back'],
  /** Handing a guarded rollout to a person or back to the autopilot (SPEC §10). */
  autopilot: ['running', 'paused'],
};

/** Where a status-changing action leads. */
export const LEADS_TO: Partial<Record<ExperimentAction, ExperimentStatus>> = {
  start: 'running',
  pause: 'paused',
  promote: 'released',
  rollback: 'rolled_back',
  archive: 'archived',
};

/** 409 unless `action` is allowed from `status`. */
export function assertAllowed(action: ExperimentAction, key: string, status: ExperimentStatus): void {
  const allowed = ALLOWED_FROM[action];
  if (!allowed.includes(status)) {
    throw createError('BUNRYU_INVALID_TRANSITION', `Cannot ${action} experiment ${key}: it is ${status} (allowed from ${allowed.join(', ')})`, {
      action,
      status,
      allowedFrom: allowed,
    });
  }
}
