import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RolloutResults } from '@bunryu/core';

/** An aggregator on a real port serving whatever results a test sets, and remembering what it was asked. */
export async function fakeAggregator() {
  const results = new Map<string, RolloutResults>();
  const asked: string[] = [];
  const server: Server = createServer((req, res) => {
    asked.push(req.url ?? '');
    const key = decodeURIComponent((req.url ?? '').split('?')[0]!.replace('/v1/results/', ''));
    const r = results.get(key);
    res.writeHead(r ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(r ?? { error: { code: 'BUNRYU_NOT_FOUND', message: `no results for ${key}` } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    asked,
    set: (key: string, r: RolloutResults) => results.set(key, r),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** SPEC §4 results with `n` units per variant, the serving guardrails and a `ctr` primary. */
export function results(o: { n?: [number, number]; errors?: [number, number]; latency?: [number, number]; ctrDiff?: number; ctrP?: number } = {}): RolloutResults {
  const [nc, nt] = o.n ?? [6000, 6000];
  const [ec, et] = o.errors ?? [0.01, 0.01];
  const [lc, lt] = o.latency ?? [50, 50];
  return {
    variants: [
      { key: 'control', units: nc },
      { key: 'treatment', units: nt },
    ],
    srm: { pValue: 0.5, mismatch: false },
    metrics: [
      { metric: 'error_rate', type: 'proportion', variants: [{ key: 'control', units: nc, mean: ec, variance: ec * (1 - ec) }, { key: 'treatment', units: nt, mean: et, variance: et * (1 - et) }], comparisons: [] },
      { metric: 'latency_ms', type: 'mean', variants: [{ key: 'control', units: nc, mean: lc, variance: 400 }, { key: 'treatment', units: nt, mean: lt, variance: 400 }], comparisons: [] },
      {
        metric: 'ctr',
        type: 'proportion',
        variants: [{ key: 'control', units: nc, mean: 0.1, variance: 0.09 }, { key: 'treatment', units: nt, mean: 0.1 + (o.ctrDiff ?? 0), variance: 0.09 }],
        comparisons: [{ variant: 'treatment', baseline: 'control', diff: o.ctrDiff ?? 0, sequentialPValue: o.ctrP ?? 1 }],
      },
    ],
  };
}
