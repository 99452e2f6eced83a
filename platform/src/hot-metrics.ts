import type { Registry } from 'prom-client';

/**
 * Prometheus metrics for per-request hot paths. prom-client's Counter.inc and Histogram.observe
 * cost microseconds per call (label hashing, objects); these keep plain numbers keyed by a label
 * string and build prom-client's exposition only when /metrics is read.
 */

interface Series {
  labels: Record<string, string>;
  value: number;
}

export interface HotCounter {
  inc(labelValues: readonly string[], by?: number): void;
}

export function hotCounter(registry: Registry, name: string, help: string, labelNames: readonly string[]): HotCounter {
  const series = new Map<string, Series>();
  registry.registerMetric({
    name,
    help,
    type: 'counter',
    get: async () => ({ name, help, type: 'counter', aggregator: 'sum', values: [...series.values()].map((s) => ({ labels: s.labels, value: s.value })) }),
  } as never);
  return {
    inc(labelValues, by = 1) {
      const key = labelValues.join('\u0000');
      const s = series.get(key);
      if (s) s.value += by;
      else series.set(key, { labels: labelsOf(labelNames, labelValues), value: by });
    },
  };
}

export interface HotHistogram {
  observe(labelValues: readonly string[], value: number): void;
}

interface HistogramSeries {
  labels: Record<string, string>;
  buckets: Float64Array;
  sum: number;
  count: number;
}

export function hotHistogram(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly string[],
  buckets: readonly number[],
): HotHistogram {
  const series = new Map<string, HistogramSeries>();
  registry.registerMetric({
    name,
    help,
    type: 'histogram',
    get: async () => {
      const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
      for (const s of series.values()) {
        let cumulative = 0;
        buckets.forEach((le, i) => {
          cumulative += s.buckets[i]!;
          values.push({ labels: { ...s.labels, le }, value: cumulative, metricName: `${name}_bucket` });
        });
        values.push({ labels: { ...s.labels, le: '+Inf' }, value: s.count, metricName: `${name}_bucket` });
        values.push({ labels: s.labels, value: s.sum, metricName: `${name}_sum` });
        values.push({ labels: s.labels, value: s.count, metricName: `${name}_count` });
      }
      return { name, help, type: 'histogram', aggregator: 'sum', values };
    },
  } as never);
  return {
    observe(labelValues, value) {
      const key = labelValues.join('\u0000');
      let s = series.get(key);
      if (!s) {
        s = { labels: labelsOf(labelNames, labelValues), buckets: new Float64Array(buckets.length), sum: 0, count: 0 };
        series.set(key, s);
      }
      s.sum += value;
      s.count++;
      for (let i = 0; i < buckets.length; i++) {
        if (value <= buckets[i]!) {
          s.buckets[i]!++;
          break;
        }
      }
    },
  };
}

function labelsOf(names: readonly string[], values: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  names.forEach((n, i) => (labels[n] = values[i] ?? ''));
  return labels;
}
