/**
 * Steady client traffic through the gateway, bounded in rate, in-flight requests and time, to
 * 127.0.0.1 only. Every request has a unit of its own and a request id chosen here (the gateway
 * keeps a client's `x-request-id`), so its exposure can be found again; every answered request is
 * followed by one click with an event id and a timestamp chosen here, retried as is until the
 * gateway accepts it, as a careful client does.
 */
import { randomUUID } from 'node:crypto';

export interface RequestRecord {
  requestId: string;
  unitId: string;
  sentAt: number;
  /** HTTP status, or null when no answer came (connection refused or reset, timeout). */
  status: number | null;
  latencyMs: number;
  fallback: boolean;
  /** The answer carried an assignment: the gateway logged an exposure for it. */
  exposed: boolean;
}

export interface ClickRecord {
  eventId: string;
  unitId: string;
  ts: number;
  /** The gateway answered 202 without rejecting it. */
  accepted: boolean;
  attempts: number;
}

export interface TrafficOptions {
  gateway: () => string;
  route: string;
  prefix: string;
  ratePerSecond: number;
  maxInFlight?: number;
  requestTimeoutMs?: number;
}

const instance = (i: number) => ({ user_affinity: (i % 7) / 7 - 0.5, item_popularity: (i % 5) / 5, recency: i % 30, price: 10 + (i % 20), position: 1 + (i % 10) });

export class Traffic {
  readonly requests: RequestRecord[] = [];
  readonly clicks: ClickRecord[] = [];
  private pendingClicks: ClickRecord[] = [];
  private inFlight = 0;
  private skipped = 0;
  private timer: NodeJS.Timeout | null = null;
  private clickTimer: NodeJS.Timeout | null = null;
  private sendingClicks: Promise<void> | null = null;
  private n = 0;
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly options: TrafficOptions) {}

  start(): void {
    const every = 1000 / this.options.ratePerSecond;
    this.timer = setInterval(() => this.tick(), every);
    this.clickTimer = setInterval(() => void this.flushClicks(), 250);
  }

  /** Stops sending requests, waits for those in flight, then delivers the clicks (bounded). */
  async stop(clickDeadlineMs = 60_000): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.clickTimer) clearInterval(this.clickTimer);
    this.timer = this.clickTimer = null;
    await Promise.all(this.running);
    const deadline = Date.now() + clickDeadlineMs;
    while (this.pendingClicks.length > 0 && Date.now() < deadline) {
      await this.flushClicks();
      if (this.pendingClicks.length > 0) await new Promise((r) => setTimeout(r, 250));
    }
  }

  get notSent(): number {
    return this.skipped;
  }

  /** The last answer's time: no answer, or answered with a fallback, or answered for real. */
  lastAnswer(): RequestRecord | undefined {
    return this.requests.at(-1);
  }

  private tick(): void {
    if (this.inFlight >= (this.options.maxInFlight ?? 64)) {
      this.skipped++;
      return;
    }
    const i = this.n++;
    const p = this.request(i).finally(() => this.running.delete(p));
    this.running.add(p);
  }

  private async request(i: number): Promise<void> {
    const { prefix, route } = this.options;
    const record: RequestRecord = {
      requestId: `${prefix}-r${i}`,
      unitId: `${prefix}-u${i}`,
      sentAt: Date.now(),
      status: null,
      latencyMs: 0,
      fallback: false,
      exposed: false,
    };
    this.inFlight++;
    try {
      const res = await fetch(`${this.options.gateway()}/v1/routes/${route}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-unit-id': record.unitId, 'x-request-id': record.requestId },
        body: JSON.stringify({ instances: [instance(i)] }),
        signal: AbortSignal.timeout(this.options.requestTimeoutMs ?? 5000),
      });
      await res.arrayBuffer();
      record.status = res.status;
      record.fallback = res.headers.get('x-ab-fallback') === 'true';
      record.exposed = (res.headers.get('x-ab-assignments') ?? '') !== '';
    } catch {
      record.status = null;
    } finally {
      record.latencyMs = Date.now() - record.sentAt;
      this.inFlight--;
      this.requests.push(record);
    }
    if (record.status !== null && record.status >= 200 && record.status < 300) {
      const click: ClickRecord = { eventId: randomUUID(), unitId: record.unitId, ts: Date.now(), accepted: false, attempts: 0 };
      this.clicks.push(click);
      this.pendingClicks.push(click);
    }
  }

  private flushClicks(): Promise<void> {
    this.sendingClicks ??= this.sendClicks().finally(() => (this.sendingClicks = null));
    return this.sendingClicks;
  }

  private async sendClicks(): Promise<void> {
    while (this.pendingClicks.length > 0) {
      const batch = this.pendingClicks.slice(0, 500);
      for (const c of batch) c.attempts++;
      try {
        const res = await fetch(`${this.options.gateway()}/v1/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ events: batch.map((c) => ({ eventId: c.eventId, type: 'click', ts: c.ts, unitId: c.unitId, route: this.options.route, value: 1 })) }),
          signal: AbortSignal.timeout(5000),
        });
        const body = (await res.json().catch(() => null)) as { rejected?: { index: number }[] } | null;
        if (res.status !== 202) return;
        const rejected = new Set((body?.rejected ?? []).map((r) => r.index));
        batch.forEach((c, index) => (c.accepted = !rejected.has(index)));
        this.pendingClicks.splice(0, batch.length);
      } catch {
        // No answer: the same events are sent again on the next flush (the store drops copies by eventId).
        return;
      }
    }
  }
}
