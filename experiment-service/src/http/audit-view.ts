import type { AuditEntry } from '../store/experiment-store.ts';

/** Fields whose change is implied by every change, so they would only be noise. */
const BOOKKEEPING = new Set(['version', 'updatedAt']);

/** An audit entry with the top-level fields that differ between before and after. */
export function withChanges(entry: AuditEntry): AuditEntry & { changed: string[] } {
  const before = asRecord(entry.before);
  const after = asRecord(entry.after);
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  const changed = [...keys].filter((k) => !BOOKKEEPING.has(k) && JSON.stringify(before[k]) !== JSON.stringify(after[k])).sort();
  return { ...entry, changed };
}

function asRecord(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}
