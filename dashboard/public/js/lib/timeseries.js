// The aggregator's timeseries, reduced to what the lift chart draws: per treatment variant, a
// list of {t, lift, lo, hi} (relative lift and its 95% interval, as fractions).

/** @param {any} p */
const timeOf = (p) => {
  const raw = p.ts ?? p.t ?? p.time ?? p.at ?? p.end ?? p.intervalEnd ?? p.bucket ?? p.start;
  const t = typeof raw === 'number' ? raw : Date.parse(raw);
  return Number.isFinite(t) ? t : null;
};

/** @type {[string, number][]} */
const STEPS = [['1s', 1e3], ['2s', 2e3], ['5s', 5e3], ['10s', 1e4], ['15s', 15e3], ['30s', 3e4], ['1m', 6e4], ['5m', 3e5], ['15m', 9e5], ['30m', 18e5], ['1h', 36e5], ['3h', 108e5], ['6h', 216e5], ['12h', 432e5], ['1d', 864e5]];

/**
 * A time-series interval giving at most ~60 points since the experiment started, so a young
 * experiment still draws a curve rather than one point.
 * @param {string | undefined} startedAt
 * @param {number} now
 */
export function chooseInterval(startedAt, now) {
  const span = now - Date.parse(startedAt ?? '');
  if (!Number.isFinite(span)) return undefined;
  return (STEPS.find(([, ms]) => span / ms <= 60) ?? STEPS[STEPS.length - 1])[0];
}

const Z95 = 1.959963984540054;

/**
 * Relative lift and its delta-method 95% interval from two variants' cumulative figures, for
 * points that carry only per-variant figures.
 * @param {{mean: number, variance: number, units: number}} c
 * @param {{mean: number, variance: number, units: number}} t
 */
export function relativeLift(c, t) {
  if (!(c?.units > 1 && t?.units > 1) || !c.mean) return { lift: null, lo: null, hi: null };
  const lift = t.mean / c.mean - 1;
  const se = Math.sqrt(t.variance / t.units / c.mean ** 2 + (t.mean ** 2 * (c.variance / c.units)) / c.mean ** 4);
  return Number.isFinite(se) ? { lift, lo: lift - Z95 * se, hi: lift + Z95 * se } : { lift, lo: null, hi: null };
}

/**
 * @param {any} ts the aggregator's answer
 * @param {string[]} variantOrder variant keys, control first
 * @returns {{variant: string, index: number, points: {t: number, lift: number | null, lo: number | null, hi: number | null}[]}[]}
 */
export function liftSeries(ts, variantOrder) {
  const control = variantOrder[0];
  /** @type {Map<string, {t: number, lift: number | null, lo: number | null, hi: number | null}[]>} */
  const byVariant = new Map(variantOrder.slice(1).map((k) => [k, []]));
  const points = ts?.points ?? ts?.intervals ?? ts?.timeseries ?? (Array.isArray(ts) ? ts : null);

  if (Array.isArray(points)) {
    for (const p of points) {
      const t = timeOf(p);
      if (t === null) continue;
      const comps = p.comparisons ?? p.metric?.comparisons ?? [];
      const vs = p.variants ?? p.metric?.variants ?? [];
      for (const [key, list] of byVariant) {
        const c = comps.find((x) => x.variant === key);
        if (c) list.push({ t, lift: c.relLift ?? null, lo: c.relCi95?.[0] ?? null, hi: c.relCi95?.[1] ?? null });
        else {
          const base = vs.find((x) => x.key === control);
          const v = vs.find((x) => x.key === key);
          if (base && v) list.push({ t, ...relativeLift(base, v) });
        }
      }
    }
  } else if (Array.isArray(ts?.variants) || Array.isArray(ts?.series)) {
    // Per-variant series of cumulative figures: line them up by time against the control.
    const series = ts.variants ?? ts.series;
    const keyOf = (s) => s.key ?? s.variant;
    const base = series.find((s) => keyOf(s) === control);
    const baseAt = new Map((base?.points ?? []).map((p) => [timeOf(p), p]));
    for (const s of series) {
      const list = byVariant.get(keyOf(s));
      if (!list) continue;
      for (const p of s.points ?? []) {
        const t = timeOf(p);
        if (t === null) continue;
        if (p.relLift !== undefined) list.push({ t, lift: p.relLift, lo: p.relCi95?.[0] ?? null, hi: p.relCi95?.[1] ?? null });
        else {
          const c = baseAt.get(t);
          if (c) list.push({ t, ...relativeLift(c, p) });
        }
      }
    }
  }
  return [...byVariant].map(([variant, pts]) => ({ variant, index: variantOrder.indexOf(variant), points: pts.sort((a, b) => a.t - b.t) }));
}
