/** @param {number | null | undefined} x @param {number} [digits] */
export function pct(x, digits = 1) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  return `${(x * 100).toFixed(digits)}%`;
}

/** A signed relative change: +4.2%, −1.0%. @param {number | null | undefined} x */
export function signedPct(x, digits = 1) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  const s = (Math.abs(x) * 100).toFixed(digits);
  return x > 0 ? `+${s}%` : x < 0 ? `−${s}%` : `${s}%`;
}

/** @param {number | null | undefined} p */
export function pValue(p) {
  if (p === null || p === undefined || !Number.isFinite(p)) return '—';
  if (p < 0.001) return '< 0.001';
  return p.toFixed(3);
}

/** @param {number | null | undefined} x */
export function num(x) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  if (Number.isInteger(x)) return x.toLocaleString('en-US');
  const a = Math.abs(x);
  return x.toLocaleString('en-US', { maximumSignificantDigits: a >= 100 ? 6 : 4 });
}

/** "3 d", "5 h", "12 min" since an ISO time. @param {string | undefined} iso @param {number} [now] */
export function age(iso, now = Date.now()) {
  if (!iso) return '—';
  const ms = now - Date.parse(iso);
  if (!Number.isFinite(ms)) return '—';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

/** @param {string | number | undefined} t */
export function dateTime(t) {
  if (t === undefined || t === null) return '—';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  return d.toLocaleString('en-GB', { year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** @param {string | number} t */
export function clock(t) {
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toLocaleTimeString('en-GB');
}

/** @param {unknown} v */
export function json(v) {
  return JSON.stringify(v, null, 2);
}

/**
 * How a comparison reads: a CI clear of zero is a significant win or loss.
 * @param {{ci95?: number[], relCi95?: number[]} | undefined} c
 * @returns {'win' | 'loss' | 'flat' | 'none'}
 */
export function verdict(c) {
  const ci = c?.relCi95 ?? c?.ci95;
  if (!ci || ci.length !== 2 || !ci.every(Number.isFinite)) return 'none';
  if (ci[0] > 0) return 'win';
  if (ci[1] < 0) return 'loss';
  return 'flat';
}
