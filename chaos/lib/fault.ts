/** What a fault module is given and gives back (see chaos/run.ts for the order of things). */
import { metric, TOKEN, type Stack } from './stack.ts';
import type { Traffic } from './traffic.ts';

export const ROUTE = 'chaos';
export const EXPERIMENT = 'chaos-split';
/** The route's deadline: a stopped model-server is answered from the fallback after it. */
export const ROUTE_TIMEOUT_MS = 300;

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface FaultContext {
  stack: Stack;
  form: 'short' | 'full';
  traffic: Traffic;
  /** Requests per second of the traffic: lag below two seconds of it counts as caught up. */
  rate: number;
  checks: Check[];
  /** What the last caughtUp() saw, for a failure's message. */
  last: string;
  check(name: string, ok: boolean, detail?: string): void;
  note(message: string): void;
  sleep(ms: number): Promise<void>;
  admin<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number | null; body: T | null; ms: number }>;
  /** Milliseconds until `ready()` holds, polled every 100 ms; null if not within `timeoutMs`. */
  until(ready: () => Promise<boolean>, timeoutMs: number): Promise<number | null>;
  /** Records in the topic the consumer group has not committed yet; null while Kafka does not answer. */
  groupLag(): Promise<number | null>;
  /** Why the last groupLag() gave null. */
  readonly lagError: string;
  /** The gateway's events not yet in Kafka (memory queue and disk spill); null while it does not answer. */
  gatewayBacklog(): Promise<number | null>;
}

export interface Fault {
  name: string;
  /** Part of the short form (CI). */
  short: boolean;
  /** The gateway is down on purpose for a while: requests without an answer are expected. */
  gatewayDown?: boolean;
  /** Injects the fault under traffic, heals it, and returns the time to recover from the heal. */
  run(ctx: FaultContext): Promise<number | null>;
}

export function makeContext(stack: Stack, form: 'short' | 'full', traffic: Traffic, rate: number, print: (line: string) => void): FaultContext {
  let lagError = '';
  const checks: Check[] = [];
  return {
    stack,
    form,
    traffic,
    rate,
    checks,
    last: '',
    check(name, ok, detail = '') {
      checks.push({ name, ok, detail });
      print(`    ${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? `: ${detail}` : ''}`);
    },
    note: (message) => print(`    ${message}`),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    async admin<T>(method: string, path: string, body?: unknown) {
      const t0 = Date.now();
      try {
        const res = await fetch(`${stack.experimentService.url}${path}`, {
          method,
          headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(20_000),
        });
        const text = await res.text();
        let parsed: T | null = null;
        try {
          parsed = text ? (JSON.parse(text) as T) : null;
        } catch {
          parsed = null;
        }
        return { status: res.status, body: parsed, ms: Date.now() - t0 };
      } catch {
        return { status: null, body: null, ms: Date.now() - t0 };
      }
    },
    async until(ready, timeoutMs) {
      const t0 = Date.now();
      while (Date.now() - t0 < timeoutMs) {
        if (await ready().catch(() => false)) return Date.now() - t0;
        await new Promise((r) => setTimeout(r, 100));
      }
      return null;
    },
    get lagError() {
      return lagError;
    },
    async groupLag() {
      // Each aggregator reports its group's lag over every partition, its own or not.
      const live = stack.aggregators.filter((a) => a.alive);
      const lags = await Promise.all(live.map((a) => metric(a.url, 'bunryu_aggregator_consumer_lag')));
      if (live.length === 0) lagError = 'no aggregator running';
      else if (lags.some((l) => l === null || Number.isNaN(l))) lagError = 'an aggregator cannot tell (Kafka unreachable?)';
      else return Math.max(...(lags as number[]));
      return null;
    },
    async gatewayBacklog() {
      const [queue, spill] = await Promise.all([metric(stack.gateway.url, 'bunryu_gateway_event_queue_depth'), metric(stack.gateway.url, 'bunryu_gateway_event_spill_pending')]);
      return queue === null || spill === null ? null : queue + spill;
    },
  };
}

/** Caught up: the gateway holds nothing back and the aggregators are at most `slack` records behind. */
export async function caughtUp(ctx: FaultContext, slack: number): Promise<boolean> {
  const [backlog, lag] = await Promise.all([ctx.gatewayBacklog(), ctx.groupLag()]);
  ctx.last = `gateway backlog ${backlog}, consumer group lag ${lag ?? ctx.lagError}`;
  return backlog !== null && lag !== null && backlog <= slack && lag <= slack;
}
