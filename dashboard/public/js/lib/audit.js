// Audit entries carry whole before/after objects; a reader wants the few fields that changed.

const IGNORED = new Set(['updatedAt', 'version', 'createdAt']);

/** @param {unknown} v */
function short(v) {
  if (v === undefined) return '(none)';
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > 80 ? s.slice(0, 77) + '…' : s;
}

/**
 * @param {any} before
 * @param {any} after
 * @returns {{field: string, before: string, after: string}[]}
 */
export function changes(before, after) {
  if (before === null || before === undefined || after === null || after === undefined || typeof before !== 'object' || typeof after !== 'object') {
    if (JSON.stringify(before) === JSON.stringify(after)) return [];
    return [{ field: '', before: short(before), after: short(after) }];
  }
  const out = [];
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => !IGNORED.has(k));
  for (const k of keys) {
    const a = before[k];
    const b = after[k];
    if (JSON.stringify(a) === JSON.stringify(b)) continue;
    if (k === 'variants' && Array.isArray(a) && Array.isArray(b)) {
      const wa = a.map((v) => `${v.key} ${v.weight}%`).join(', ');
      const wb = b.map((v) => `${v.key} ${v.weight}%`).join(', ');
      if (wa !== wb) out.push({ field: 'weights', before: wa, after: wb });
      const pa = JSON.stringify(a.map(({ weight: _w, ...rest }) => rest));
      const pb = JSON.stringify(b.map(({ weight: _w, ...rest }) => rest));
      if (pa !== pb) out.push({ field: 'variants', before: short(a.map(({ weight: _w, ...rest }) => rest)), after: short(b.map(({ weight: _w, ...rest }) => rest)) });
      continue;
    }
    out.push({ field: k, before: short(a), after: short(b) });
  }
  return out;
}
