import { useEffect, useState } from 'preact/hooks';

// Hash routes need no server fallback and survive reloads: #/experiments/ranker-v2.

/** @returns {string[]} the path segments of the current hash */
function current() {
  const path = location.hash.replace(/^#\/?/, '');
  return path === '' ? [] : path.split('/').map(decodeURIComponent);
}

export function useRoute() {
  const [segments, setSegments] = useState(current);
  useEffect(() => {
    const on = () => setSegments(current());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return segments;
}

/** @param {...string} parts */
export const href = (...parts) => '#/' + parts.map(encodeURIComponent).join('/');

/** @param {...string} parts */
export function navigate(...parts) {
  location.hash = href(...parts);
}
