import { BunryuError, decideRollout, evaluateGuardrails, type Experiment, type GuardrailEvidence, type RolloutDecision } from '@bunryu/core';
import type { Logger } from '@bunryu/platform/log';
import { AUTOPILOT, type ExperimentManager } from '../experiments/experiment-manager.ts';
import type { ResultsSource } from './results-source.ts';

/** The metrics the gateway itself produces: cheap to answer and what a rollback waits for (SPEC §10). */
export const SERVING_GUARDRAILS = ['error_rate', 'latency_ms'] as const;

export interface AutopilotOptions {
  manager: ExperimentManager;
  results: ResultsSource;
  logger: Logger;
  now?: () => number;
  /** Serving guardrails are evaluated this often (SPEC §10: at least every 5 s). */
  servingIntervalMs?: number;
  /** Every guardrail and the primary metric this often (SPEC §10: at least every minute). */
  fullIntervalMs?: number;
  /** Receives every action and every change of the reason to hold, as JSON. */
  webhook?: (event: AutopilotEvent) => Promise<void>;
}

/** What the webhook receives and GET …/rollout shows as the last decision. */
export interface AutopilotEvent {
  experiment: string;
  version: number;
  at: string;
  step: number;
  decision: RolloutDecision;
  /** Whether the action was applied (false: another replica or a person changed the experiment first). */
  applied: boolean;
}

export interface Evaluation {
  evaluatedAt: string;
  /** Which loop produced it: serving guardrails only, or everything. */
  scope: 'serving' | 'full';
  guardrails: GuardrailEvidence[];
  lastDecision: AutopilotEvent;
}

/**
 * The release autopilot's loop (ADR 0007): every serving interval, each running experiment with a
 * rollout plan and the autopilot active is evaluated with `decideRollout` on its results, and a
 * decision other than hold is applied through the experiment manager's releaser actions with the
 * version it was read at, so a second replica's identical decision is a stale write and a no-op.
 */
export class Autopilot {
  private readonly evaluations = new Map<string, Evaluation>();
  /** Per experiment: the analysed units seen last and when they last grew. */
  private readonly traffic = new Map<string, { units: number; at: number }>();
  private readonly lastFull = new Map<string, number>();
  private readonly busy = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private readonly now: () => number;
  private readonly servingIntervalMs: number;
  private readonly fullIntervalMs: number;

  constructor(private readonly options: AutopilotOptions) {
    this.now = options.now ?? Date.now;
    this.servingIntervalMs = options.servingIntervalMs ?? 2000;
    this.fullIntervalMs = options.fullIntervalMs ?? 60_000;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.servingIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** The last evaluation of an experiment on this replica, if any. */
  evaluation(key: string): Evaluation | undefined {
    return this.evaluations.get(key);
  }

  /** One pass over every rollout the autopilot drives; resolves when each has been decided. */
  tick(): Promise<void> {
    if (this.running) return this.running;
    this.running = this.pass().finally(() => (this.running = null));
    return this.running;
  }

  private async pass(): Promise<void> {
    let experiments: Experiment[];
    try {
      experiments = await this.options.manager.list({ status: 'running' });
    } catch (err) {
      this.options.logger.warn({ err: String(err) }, 'autopilot: cannot list experiments');
      return;
    }
    const driven = experiments.filter((e) => e.rollout && e.rolloutState?.autopilot === 'active');
    await Promise.all(driven.map((e) => this.evaluate(e)));
  }

  private async evaluate(e: Experiment): Promise<void> {
    if (this.busy.has(e.key)) return;
    this.busy.add(e.key);
    try {
      const now = this.now();
      const full = now - (this.lastFull.get(e.key) ?? -Infinity) >= this.fullIntervalMs;
      let results;
      try {
        results = await this.options.results.results(e.key, full ? undefined : SERVING_GUARDRAILS);
      } catch (err) {
        // No results, no decision: an aggregator that is down or slow makes the autopilot hold.
        this.options.logger.warn({ experiment: e.key, err: String(err) }, 'autopilot: no results, holding');
        return;
      }
      if (full) this.lastFull.set(e.key, now);
      const units = results.variants.reduce((sum, v) => sum + v.units, 0);
      const stepStartedAt = Date.parse(e.rolloutState!.stepStartedAt);
      const seen = this.traffic.get(e.key);
      // On a first look (or after a restart) traffic counts from now if there is any, else from the step's start.
      const lastTrafficAt = seen ? (units > seen.units ? now : seen.at) : units > 0 ? now : stepStartedAt;
      this.traffic.set(e.key, { units, at: lastTrafficAt });
      const plan = e.rollout!;
      const clock = { step: e.rolloutState!.step, stepStartedAt, lastTrafficAt };
      const decision = decideRollout(plan, results, clock, now, e.metrics.primary ? { primaryMetric: e.metrics.primary } : {});
      const applied = decision.action === 'hold' ? false : await this.apply(e, decision);
      const event: AutopilotEvent = { experiment: e.key, version: e.version, at: new Date(now).toISOString(), step: clock.step, decision, applied };
      const before = this.evaluations.get(e.key);
      this.evaluations.set(e.key, { evaluatedAt: event.at, scope: full ? 'full' : 'serving', guardrails: full || !before ? decision.evidence.guardrails : merge(before.guardrails, evaluateGuardrails(plan, results)), lastDecision: event });
      if (decision.action !== 'hold' ? applied : before?.lastDecision.decision.reason !== decision.reason) this.notify(event);
    } finally {
      this.busy.delete(e.key);
    }
  }

  /** Applies a decision at the version it was made on; false when the experiment moved on meanwhile. */
  private async apply(e: Experiment, decision: RolloutDecision): Promise<boolean> {
    const { manager, logger } = this.options;
    const ifMatch = [e.version];
    const context = { decision: { reason: decision.reason, message: decision.message, evidence: decision.evidence }, ...(decision.toStep !== undefined ? { toStep: decision.toStep } : {}) };
    try {
      if (decision.action === 'ramp') await manager.ramp(e.key, decision.weights!, ifMatch, AUTOPILOT, context);
      else if (decision.action === 'promote') await manager.promote(e.key, decision.variant!, ifMatch, AUTOPILOT, context);
      else if (decision.action === 'rollback') await manager.rollback(e.key, ifMatch, AUTOPILOT, context);
      else if (decision.action === 'pause') await manager.pause(e.key, ifMatch, AUTOPILOT, context);
      logger.info({ experiment: e.key, action: decision.action, reason: decision.reason, message: decision.message }, 'autopilot acted');
      return true;
    } catch (err) {
      // Another replica (or a person) changed the experiment since it was read: that change wins.
      if (err instanceof BunryuError && (err.code === 'BUNRYU_VERSION_MISMATCH' || err.code === 'BUNRYU_INVALID_TRANSITION')) return false;
      logger.error({ experiment: e.key, action: decision.action, err: String(err) }, 'autopilot: action failed');
      return false;
    }
  }

  private notify(event: AutopilotEvent): void {
    const { webhook, logger } = this.options;
    if (!webhook) return;
    webhook(event).catch((err: unknown) => logger.warn({ experiment: event.experiment, err: String(err) }, 'autopilot: webhook failed'));
  }
}

/** The serving loop refreshes its guardrails and keeps the others from the last full evaluation. */
function merge(previous: readonly GuardrailEvidence[], fresh: readonly GuardrailEvidence[]): GuardrailEvidence[] {
  return previous.map((p) => fresh.find((f) => f.metric === p.metric && f.variant === p.variant && f.verdict !== 'missing') ?? p);
}

/** A webhook that POSTs each event as JSON, bounded in time. */
export function httpWebhook(url: string, timeoutMs = 3000): (event: AutopilotEvent) => Promise<void> {
  return async (event) => {
    const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(event), signal: AbortSignal.timeout(timeoutMs) });
    if (!response.ok) throw new Error(`webhook answered ${response.status}`);
  };
}
