/**
 * Synthetic users of the demo's ranked route (SPEC §13): each visit sends candidate items to the
 * gateway, which answers the interleaved list of v1's and v2's rankings; the user looks down the
 * list and clicks each item with its TRUE click probability at the position it is shown (the
 * synthetic world's position effect is the users' position bias), and the clicks name the
 * request and the item so the aggregator credits the ranking that contributed it.
 */
import { createRng, sampleInstance, trueClickProbability, type Instance } from '../model-server/src/training/synthetic.ts';
import { pacedVisits, type PacedVisitsOptions } from './paced-visits.ts';
import { DEMO_RANK_ROUTE } from './seed-demo.ts';

export interface InterleavingTrafficOptions extends Partial<PacedVisitsOptions> {
  gatewayUrl: string;
  route?: string;
  users?: number;
  candidates?: number;
  /** Items of the answered list the user looks at. */
  shown?: number;
  seed?: number;
}

export interface InterleavingTrafficSummary {
  visits: number;
  interleaved: number;
  clicks: number;
  failures: number;
}

export async function driveInterleavingTraffic(o: InterleavingTrafficOptions): Promise<InterleavingTrafficSummary> {
  const route = o.route ?? DEMO_RANK_ROUTE;
  const users = o.users ?? 2000;
  const candidates = o.candidates ?? 10;
  const shown = o.shown ?? 5;
  const rng = createRng(o.seed ?? 43);
  const summary: InterleavingTrafficSummary = { visits: 0, interleaved: 0, clicks: 0, failures: 0 };
  let pending: unknown[] = [];

  const flush = async () => {
    if (pending.length === 0) return;
    const events = pending;
    pending = [];
    const res = await fetch(`${o.gatewayUrl}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events }) });
    if (res.status !== 202) summary.failures++;
  };

  const visit = async (n: number) => {
    const unitId = `ranked-user-${1 + Math.floor(rng() * users)}`;
    const byId = new Map<string, Instance>();
    for (let i = 0; i < candidates; i++) byId.set(`item-${n}-${i}`, sampleInstance(rng));
    // The position is not known before ranking: every candidate is scored as if at the top.
    const items = [...byId].map(([id, x]) => ({ id, features: { ...x, position: 1 } }));
    const res = await fetch(`${o.gatewayUrl}/v1/routes/${route}/rank`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-unit-id': unitId }, body: JSON.stringify({ items }) });
    const requestId = res.headers.get('x-request-id') ?? undefined;
    const body = (await res.json()) as { items?: { id: string }[] };
    if (!res.ok || !Array.isArray(body.items)) {
      summary.failures++;
      return;
    }
    summary.visits++;
    if (res.headers.get('x-ab-interleaved')) summary.interleaved++;
    body.items.slice(0, shown).forEach((it, i) => {
      const x = byId.get(it.id);
      if (!x) return;
      pending.push({ type: 'impression', unitId, route, requestId, itemId: it.id });
      if (rng() < trueClickProbability({ ...x, position: i + 1 })) {
        summary.clicks++;
        pending.push({ type: 'click', unitId, route, requestId, itemId: it.id });
      }
    });
    if (pending.length >= 200) await flush();
  };

  await pacedVisits({ ...o, concurrency: o.concurrency ?? 4 }, visit, () => summary.failures++);
  await flush();
  return summary;
}
