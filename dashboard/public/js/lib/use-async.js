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
    if (!opts.intervalMs) return undefined;
    const t = setInterval(() => {
      if (!document.hidden) void reload();
    }, opts.intervalMs);
    return () => clearInterval(t);
  }, [reload, opts.intervalMs]);
  return { ...state, reload };
}
