/** Plausible aggregator answers for UI work: a treatment that wins on CTR. */
export function demoResults(experiment: string, now: number, srmMismatch = false) {
  return {
    experiment,
    updatedAt: new Date(now).toISOString(),
    srm: { pValue: srmMismatch ? 0.0002 : 0.42, mismatch: srmMismatch },
    variants: [
      { key: 'control', units: 10234, exposures: 15890 },
      { key: 'treatment', units: 10121, exposures: 15702 },
    ],
    metrics: [
      {
        metric: 'ctr', type: 'proportion',
        variants: [
          { key: 'control', units: 10234, count: 1023, sum: 1023, mean: 0.09996, variance: 0.08997 },
          { key: 'treatment', units: 10121, count: 1115, sum: 1115, mean: 0.11017, variance: 0.09803 },
        ],
        comparisons: [{ variant: 'treatment', baseline: 'control', diff: 0.0102, ci95: [0.0018, 0.0186], relLift: 0.1021, relCi95: [0.018, 0.186], pValue: 0.017, sequentialPValue: 0.11, probabilityToBeat: 0.991 }],
      },
      {
        metric: 'error_rate', type: 'proportion',
        variants: [
          { key: 'control', units: 10234, count: 21, sum: 21, mean: 0.00205, variance: 0.00205 },
          { key: 'treatment', units: 10121, count: 19, sum: 19, mean: 0.00188, variance: 0.00187 },
        ],
        comparisons: [{ variant: 'treatment', baseline: 'control', diff: -0.00017, ci95: [-0.0014, 0.0011], relLift: -0.085, relCi95: [-0.62, 0.45], pValue: 0.78, sequentialPValue: 1, probabilityToBeat: 0.39 }],
      },
      {
        metric: 'latency_ms', type: 'mean',
        variants: [
          { key: 'control', units: 10234, count: 15890, sum: 66738, mean: 6.521, variance: 2.1 },
          { key: 'treatment', units: 10121, count: 15702, sum: 70659, mean: 6.981, variance: 2.4 },
        ],
        comparisons: [{ variant: 'treatment', baseline: 'control', diff: 0.46, ci95: [0.42, 0.5], relLift: 0.0705, relCi95: [0.064, 0.077], pValue: 0.0001, sequentialPValue: 0.0001, probabilityToBeat: 1 }],
      },
    ],
  };
}

export function demoTimeseries(experiment: string, metric: string, now: number) {
  const points = Array.from({ length: 24 }, (_, i) => {
    const n = (i + 1) * 420;
    const half = 0.9 / Math.sqrt(n / 50);
    const lift = metric === 'ctr' ? 0.1 + 0.08 * Math.sin(i / 3) / (i + 1) : metric === 'latency_ms' ? 0.07 : -0.05;
    return {
      ts: new Date(now - (24 - i) * 5 * 60_000).toISOString(),
      comparisons: [{ variant: 'treatment', baseline: 'control', relLift: lift, relCi95: [lift - half, lift + half] }],
    };
  });
  return { experiment, metric, points };
}
