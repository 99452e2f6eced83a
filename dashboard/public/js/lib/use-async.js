import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

/**
 * Loads data, optionally every `intervalMs`, keeping the last good value while a refresh runs
 * or fails (a dashboard should not blank out on one failed poll).
 * @template T
 * @param {() => Promise<T>} load
 * @param {unknown[]} deps
 * @param {{intervalMs?: number}} [opts]
 */
export function useAsync(load, deps, opts = {}) {
  const [state, setState] = useState(/** @type {{data?: T, error?: any, loading: boolean}} */ ({ loading: true }));
  const seq = useRef(0);
  const reload = useCallback(async () => {
    const mine = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    try {
      const data = await load();
      if (mine === seq.current) setState({ data, loading: false });
    } catch (error) {
      if (mine === seq.current) setState((s) => ({ data: s.data, error, loading: false }));
    }
  }, deps);
  useEffect(() => {
    setState({ loading: true }); // a different thing is loading: do not show the last one's data
    void reload();
  }, [reload]);
  useEffect(() => {
    if (!opts.intervalMs) return undefined;
    const t = setInterval(() => {
      if (!document.hidden) void reload();
    }, opts.intervalMs);
    return () => clearInterval(t);
  }, [reload, opts.intervalMs]);
  return { ...state, reload };
}

/**
 * `fn` over `items` with at most `limit` calls in flight, so a long list does not fire a burst.
 * @template T, R
 * @param {T[]} items
 * @param {number} limit
 * @param {(item: T) => Promise<R>} fn
 * @returns {Promise<R[]>}
 */
export async function mapLimit(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
