/**
 * Synthetic users for the demo (`npm run demo`): each visit asks the gateway to score a few
 * candidate items, shows the best one, and clicks with the item's TRUE click probability from
 * the synthetic world the demo models were trained on. A model that ranks closer to the truth
 * therefore earns a truly higher click-through rate, and the dashboard shows a real winner.
 */
import { createRng, sampleInstance, trueClickProbability, type Instance } from '../model-server/src/training/synthetic.ts';

export interface TrafficOptions {
  gatewayUrl: string;
  route?: string;
  /** Distinct users; visits pick among them. */
  users?: number;
  /** Total visits; omit to run until the signal aborts. */
  visits?: number;
  concurrency?: number;
  /** Paces the visits to this rate (all workers together); unpaced when absent. */
  visitsPerSecond?: number;
  candidates?: number;
  seed?: number;
  apiKey?: string;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

export interface TrafficSummary {
  visits: number;
  clicks: number;
  failures: number;
  eventsAccepted: number;
  byVariant: Record<string, { visits: number; clicks: number }>;
}

export async function driveDemoTraffic(o: TrafficOptions): Promise<TrafficSummary> {
  const route = o.route ?? 'recommend';
  const users = o.users ?? 2000;
  const candidates = o.candidates ?? 5;
  const rng = createRng(o.seed ?? 42);
  const summary: TrafficSummary = { visits: 0, clicks: 0, failures: 0, eventsAccepted: 0, byVariant: {} };
  const headers = { 'content-type': 'application/json', ...(o.apiKey ? { 'x-api-key': o.apiKey } : {}) };
  let pending: unknown[] = [];
  let started = 0;

  const flush = async () => {
    if (pending.length === 0) return;
    const events = pending;
    pending = [];
    const res = await fetch(`${o.gatewayUrl}/v1/events`, { method: 'POST', headers, body: JSON.stringify({ events }) });
    if (res.status === 202) summary.eventsAccepted += ((await res.json()) as { accepted: number }).accepted;
    else summary.failures++;
  };

  const visit = async () => {
    const unitId = `user-${1 + Math.floor(rng() * users)}`;
    const items: Instance[] = Array.from({ length: candidates }, () => sampleInstance(rng));
    const res = await fetch(`${o.gatewayUrl}/v1/routes/${route}/predict`, {
      method: 'POST',
      headers: { ...headers, 'x-unit-id': unitId },
      body: JSON.stringify({ instances: items }),
    });
    const assignments = res.headers.get('x-ab-assignments') ?? '';
    const body = (await res.json()) as { predictions?: number[] };
    if (!res.ok || !Array.isArray(body.predictions) || body.predictions.length !== items.length) {
      summary.failures++;
      return;
    }
    let best = 0;
    body.predictions.forEach((p, i) => {
      if (p > body.predictions![best]!) best = i;
    });
    const clicked = rng() < trueClickProbability(items[best]!);
    const variant = (summary.byVariant[assignments || '(none)'] ??= { visits: 0, clicks: 0 });
    variant.visits++;
    summary.visits++;
    pending.push({ type: 'impression', unitId, route });
    if (clicked) {
      summary.clicks++;
      variant.clicks++;
      pending.push({ type: 'click', unitId, route });
      pending.push({ type: 'dwell', unitId, route, value: Math.round(-30 * Math.log(1 - rng()) * 10) / 10 });
    }
    if (pending.length >= 200) await flush();
  };

  const pacedFrom = Date.now();
  const worker = async () => {
    while (!o.signal?.aborted && (o.visits === undefined || started < o.visits)) {
      const slot = started++;
      if (o.visitsPerSecond !== undefined) {
        const wait = pacedFrom + (slot * 1000) / o.visitsPerSecond - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        if (o.signal?.aborted) break;
      }
      try {
        await visit();
      } catch {
        summary.failures++;
      }
      if (o.log && summary.visits > 0 && summary.visits % 1000 === 0) {
        o.log(`${summary.visits} visits, CTR ${(summary.clicks / summary.visits).toFixed(3)}, ${summary.failures} failures`);
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency ?? 8 }, worker));
  await flush();
  return summary;
}
