import { Socket } from 'node:net';
import { AggregatorRegistry, Gauge, type Registry } from 'prom-client';
import type { Event } from '@bunryu/core';
import { eventJson } from '../events/event-json.ts';
import type { EventSink, PublisherStats } from '../events/event-publisher.ts';
import { EVENT_PIPE_FD, encodeEvents, encodeFlush } from './event-frames.ts';
import { isMessage, type ToPrimary, type ToWorker } from './protocol.ts';

/** Events a worker gathers before handing them to the primary without waiting for the timer. */
const BATCH = 512;
const FLUSH_INTERVAL_MS = 5;
const REQUEST_TIMEOUT_MS = 10_000;

interface Waiter {
  resolve(value: ToWorker): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * A cluster worker's side of the gateway's one event publisher, which lives in the primary (the
 * embedded log has a single writer; one queue and one spill also keep the no-loss rules of the
 * single-process gateway). Events are serialized here, on the worker's cores, and cross the
 * worker's event pipe as binary frames (event-frames.ts) in batches every few milliseconds;
 * `flush` resolves once the primary has them in the event log or its disk spill. The primary
 * tells its workers when its publisher spills (answers then wait for `flush`) or refuses events.
 */
export class WorkerEventLink implements EventSink {
  private keys: string[] = [];
  private values: string[] = [];
  private sendScheduled = false;
  private nextId = 0;
  private readonly waiters = new Map<number, Waiter>();
  private readonly timer: NodeJS.Timeout;
  private handed = 0;
  /** Events written to the pipe that have not yet left this process (the pipe's buffer). */
  private inPipe = 0;
  private closed = false;
  private registry: Registry | null = null;
  /** The primary publisher's state, as it last said. */
  private state: { flushBeforeAnswer: boolean; refusal: string | null } = { flushBeforeAnswer: false, refusal: null };

  private readonly pipe = new Socket({ fd: EVENT_PIPE_FD, readable: false, writable: true });

  constructor(private readonly channel: NodeJS.Process = process) {
    if (!channel.send) throw new Error('WorkerEventLink needs an IPC channel to the cluster primary');
    // A broken pipe means the primary is gone; the worker stops on the IPC channel's 'disconnect'.
    this.pipe.on('error', () => {});
    this.timer = setInterval(() => this.send(), FLUSH_INTERVAL_MS);
    this.timer.unref();
    channel.on('message', this.onMessage);
  }

  /** The registry whose metrics this worker contributes when the cluster's are collected. */
  metricsFrom(registry: Registry): void {
    this.registry = registry;
    const pending = () => this.keys.length + this.inPipe;
    new Gauge({
      name: 'bunryu_gateway_event_handover_pending',
      help: 'Events cluster workers hold or have in their pipe buffers, not yet with the primary',
      registers: [registry],
      collect() {
        this.set(pending());
      },
    });
  }

  publish(key: string, event: Event): void {
    this.publishJson(key, eventJson(event));
  }

  publishJson(key: string, json: string): void {
    this.values.push(json);
    if (this.keys.push(key) >= BATCH && !this.sendScheduled) {
      this.sendScheduled = true;
      setImmediate(() => this.send());
    }
  }

  /** This worker's view: what it still holds and what it handed to the primary. */
  stats(): PublisherStats {
    return { queued: this.keys.length, spillPending: 0, spilled: 0, published: this.handed, failures: 0, spillErrors: 0, spillFailing: false, dropped: 0, mode: 'memory' };
  }

  flushBeforeAnswer(): boolean {
    return this.state.flushBeforeAnswer;
  }

  refusal(): string | null {
    return this.state.refusal;
  }

  async flush(): Promise<void> {
    this.send();
    const answer = await this.request((id) => this.pipe.write(encodeFlush(id)));
    if (answer.type === 'bunryu:flushed' && answer.error) throw new Error(`the cluster primary could not flush events: ${answer.error}`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    try {
      if (this.open) await this.flush();
    } finally {
      this.pipe.end();
      this.channel.off('message', this.onMessage);
      for (const w of this.waiters.values()) {
        clearTimeout(w.timer);
        w.reject(new Error('the worker event link closed'));
      }
      this.waiters.clear();
    }
  }

  /** The Prometheus exposition of the whole cluster: every worker's metrics and the primary's, aggregated. */
  async clusterMetrics(): Promise<string> {
    const answer = await this.request((id) => this.channel.send!({ type: 'bunryu:metrics', id } satisfies ToPrimary));
    if (answer.type !== 'bunryu:metrics') throw new Error(`unexpected answer ${answer.type}`);
    if (answer.error) throw new Error(answer.error);
    return AggregatorRegistry.aggregate(answer.parts).metrics();
  }

  private get open(): boolean {
    return this.channel.connected === true && this.pipe.writable;
  }

  private send(): void {
    this.sendScheduled = false;
    if (this.keys.length === 0 || !this.open) return;
    const count = this.keys.length;
    this.inPipe += count;
    this.pipe.write(encodeEvents(this.keys, this.values), () => (this.inPipe -= count));
    this.handed += count;
    this.keys = [];
    this.values = [];
  }

  /** Sends a request (`ask`, over IPC or on the event pipe) and waits for the primary's answer over IPC. */
  private request(ask: (id: number) => unknown): Promise<ToWorker> {
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      if (!this.open) return reject(new Error('the cluster primary is gone'));
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        reject(new Error(`the cluster primary did not answer within ${REQUEST_TIMEOUT_MS} ms`));
      }, REQUEST_TIMEOUT_MS);
      this.waiters.set(id, { resolve, reject, timer });
      ask(id);
    });
  }

  private readonly onMessage = (message: unknown): void => {
    if (!isMessage<ToWorker>(message)) return;
    if (message.type === 'bunryu:events-state') {
      this.state = { flushBeforeAnswer: message.flushBeforeAnswer, refusal: message.refusal };
      return;
    }
    if (message.type === 'bunryu:collect') {
      void (this.registry?.getMetricsAsJSON() ?? Promise.resolve([])).then(
        (metrics) => this.channel.connected && this.channel.send!({ type: 'bunryu:collected', id: message.id, metrics } satisfies ToPrimary),
        () => this.channel.connected && this.channel.send!({ type: 'bunryu:collected', id: message.id, metrics: [] } satisfies ToPrimary),
      );
      return;
    }
    const waiter = this.waiters.get(message.id);
    if (!waiter) return;
    this.waiters.delete(message.id);
    clearTimeout(waiter.timer);
    waiter.resolve(message);
  };
}
