/**
 * Synthetic users for the demo (`npm run demo`): each visit asks the gateway to score a few
 * candidate items, shows the best one, and clicks with the item's TRUE click probability from
 * the synthetic world the demo models were trained on. A model that ranks closer to the truth
 * therefore earns a truly higher click-through rate, and the dashboard shows a real winner.
 *
 * Users come back: each has a lasting taste (the mean of its items' `user_affinity`) and a level
 * of activity (how often it visits), drawn once from its id. With `historyDays`, every user's
 * visits of the days before the demo starts are sent first as impressions and clicks with their
 * past times, so CUPED (SPEC §11) finds each user's pre-exposure behaviour, and since taste and
 * activity drive both, the adjusted results show a real variance reduction.
 */
import { createRng, normal, sampleInstance, trueClickProbability, type Instance } from '../model-server/src/training/synthetic.ts';
import { pacedVisits, type PacedVisitsOptions } from './paced-visits.ts';

export interface TrafficOptions extends Partial<PacedVisitsOptions> {
  gatewayUrl: string;
  route?: string;
  /** Distinct users; visits pick among them. */
  users?: number;
  candidates?: number;
  seed?: number;
  /**
   * Send each user's visits of these many days before now first (impressions and clicks with
   * their past times, as a returning user's history); none when absent.
   */
  historyDays?: number;
  apiKey?: string;
  log?: (line: string) => void;
}

export interface TrafficSummary {
  visits: number;
  clicks: number;
  failures: number;
  eventsAccepted: number;
  /** Pre-period events sent (see TrafficOptions.historyDays). */
  historyEvents: number;
  byVariant: Record<string, { visits: number; clicks: number }>;
}

interface Profile {
  /** The centre of this user's items' `user_affinity`. */
  taste: number;
  /** Relative visit rate (mean 1). */
  activity: number;
}

/** A user's lasting taste and activity, the same on every run for the same seed. */
function profileOf(seed: number, user: number): Profile {
  const rng = createRng((seed * 1_000_003 + user * 7919) >>> 0);
  return { taste: 1.5 * normal(rng), activity: Math.exp(normal(rng) - 0.5) };
}

/** An item as this user meets it: the world's item, with the affinity around the user's taste. */
function itemFor(p: Profile, rng: () => number): Instance {
  const x = sampleInstance(rng);
  return { ...x, user_affinity: p.taste + 0.5 * x.user_affinity };
}

const DAY_MS = 86_400_000;

/** A Poisson count (Knuth's product of uniforms; the means here are small). */
function poisson(mean: number, rng: () => number): number {
  const limit = Math.exp(-mean);
  let [k, product] = [0, rng()];
  while (product > limit) {
    k++;
    product *= rng();
  }
  return k;
}

/** Past visits per user per day at activity 1 (the live visits follow the same activities). */
const HISTORY_VISITS_PER_DAY = 0.3;

export async function driveDemoTraffic(o: TrafficOptions): Promise<TrafficSummary> {
  const route = o.route ?? 'recommend';
  const users = o.users ?? 2000;
  const candidates = o.candidates ?? 5;
  const rng = createRng(o.seed ?? 42);
  const summary: TrafficSummary = { visits: 0, clicks: 0, failures: 0, eventsAccepted: 0, historyEvents: 0, byVariant: {} };
  const seed = o.seed ?? 42;
  // Profiles only for a population small enough to keep (the rollouts' million users stay uniform).
  const profiles = users <= 100_000 ? Array.from({ length: users }, (_, u) => profileOf(seed, u + 1)) : undefined;
  let total = 0;
  const cumulative = profiles?.map((p) => (total += p.activity));
  /** A user, more often the more active (by bisection over the cumulative activities). */
  const pickUser = (): number => {
    if (!cumulative) return 1 + Math.floor(rng() * users);
    const target = rng() * cumulative.at(-1)!;
    let [lo, hi] = [0, cumulative.length - 1];
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! > target) hi = mid;
      else lo = mid + 1;
    }
    return lo + 1;
  };
  const candidate = (user: number) => (profiles ? itemFor(profiles[user - 1]!, rng) : sampleInstance(rng));
  const headers = { 'content-type': 'application/json', ...(o.apiKey ? { 'x-api-key': o.apiKey } : {}) };
  let pending: unknown[] = [];

  const flush = async () => {
    if (pending.length === 0) return;
    const events = pending;
    pending = [];
    const res = await fetch(`${o.gatewayUrl}/v1/events`, { method: 'POST', headers, body: JSON.stringify({ events }) });
    if (res.status === 202) summary.eventsAccepted += ((await res.json()) as { accepted: number }).accepted;
    else summary.failures++;
  };

  if (o.historyDays && profiles) {
    // The days before the demo: each user's visits at its activity, the best of its candidates
    // shown (as any ranker that knows the user would), clicked with its true probability.
    const now = Date.now();
    for (let u = 1; u <= users && !o.signal?.aborted; u++) {
      const p = profiles[u - 1]!;
      const visits = poisson(HISTORY_VISITS_PER_DAY * o.historyDays * p.activity, rng);
      for (let k = 0; k < visits; k++) {
        const ts = now - Math.floor(3_600_000 + rng() * (o.historyDays * DAY_MS - 3_600_000));
        const shown = Array.from({ length: candidates }, () => itemFor(p, rng)).reduce((a, b) => (trueClickProbability(b) > trueClickProbability(a) ? b : a));
        pending.push({ type: 'impression', unitId: `user-${u}`, route, ts });
        if (rng() < trueClickProbability(shown)) pending.push({ type: 'click', unitId: `user-${u}`, route, ts: ts + 1000 });
        if (pending.length >= 200) {
          summary.historyEvents += pending.length;
          await flush();
        }
      }
    }
    summary.historyEvents += pending.length;
    await flush();
  }

  const visit = async () => {
    const user = pickUser();
    const unitId = `user-${user}`;
    const items: Instance[] = Array.from({ length: candidates }, () => candidate(user));
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

  await pacedVisits(
    { ...o, concurrency: o.concurrency ?? 8 },
    visit,
    () => summary.failures++,
    () => {
      if (o.log && summary.visits > 0 && summary.visits % 1000 === 0) {
        o.log(`${summary.visits} visits, CTR ${(summary.clicks / summary.visits).toFixed(3)}, ${summary.failures} failures`);
      }
    },
  );
  await flush();
  return summary;
}
