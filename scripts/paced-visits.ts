export interface PacedVisitsOptions {
  /** Total visits; omit to run until the signal aborts. */
  visits?: number;
  /** Paces the visits to this rate (all workers together); unpaced when absent. */
  visitsPerSecond?: number;
  concurrency: number;
  signal?: AbortSignal;
}

/**
 * Runs `visit(slot)` from `concurrency` workers, slot after slot, until `visits` have started or
 * the signal aborts; a visit that throws is handed to `failed` and the workers go on.
 */
export async function pacedVisits(o: PacedVisitsOptions, visit: (slot: number) => Promise<void>, failed: () => void, after?: () => void): Promise<void> {
  let started = 0;
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
        await visit(slot);
      } catch {
        failed();
      }
      after?.();
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
}
