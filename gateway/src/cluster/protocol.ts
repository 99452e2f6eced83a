/**
 * Control messages between the gateway's cluster primary and its workers (node:cluster IPC, JSON).
 * Events and flush requests travel on each worker's event pipe instead (event-frames.ts).
 */
import type { Registry } from 'prom-client';

/** One process's metrics, as `Registry.getMetricsAsJSON()` gives them. */
export type WorkerMetrics = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

export type ToPrimary =
  /** A worker serving /metrics asks for every process's metrics. */
  | { type: 'bunryu:metrics'; id: number }
  /** A worker's answer to `bunryu:collect`. */
  | { type: 'bunryu:collected'; id: number; metrics: WorkerMetrics };

export type ToWorker =
  /** The answer to a flush frame: everything the worker sent before it is in the event log or the disk spill. */
  | { type: 'bunryu:flushed'; id: number; error?: string }
  | { type: 'bunryu:collect'; id: number }
  /** The publisher's state, sent when it changes: whether answers wait for a flush, whether events are refused. */
  | { type: 'bunryu:events-state'; flushBeforeAnswer: boolean; refusal: string | null }
  | { type: 'bunryu:metrics'; id: number; parts: WorkerMetrics[]; error?: string };

export function isMessage<T extends { type: string }>(message: unknown): message is T {
  return typeof message === 'object' && message !== null && typeof (message as { type?: unknown }).type === 'string' && (message as { type: string }).type.startsWith('bunryu:');
}
