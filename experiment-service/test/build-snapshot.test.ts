import { describe, expect, it } from 'vitest';
import { ConfigSnapshot, type Experiment } from '@bunryu/core';
import { buildSnapshot, serializeSnapshot } from '../src/config-snapshot/build-snapshot.ts';
import { frozen } from '../src/store/experiment-store.ts';

const at = '2026-01-01T00:00:00.000Z';
const exp = (key: string, status: Experiment['status'], extra: Partial<Experiment> = {}): Experiment =>
  frozen({
    key,
    route: 'r',
    layer: key,
    trafficPercent: 100,
    allocation: { start: 0, end: 10_000 },
    salt: '',
    targeting: [],
    variants: [
      { key: 'c', weight: 50, params: { 'quote"d': 'x\ny' } },
      { key: 't', weight: 50, params: {} },
    ],
    overrides: {},
    metrics: { guardrails: [] },
    status,
    version: 1,
    createdAt: at,
    updatedAt: at,
    ...extra,
  });

describe('buildSnapshot', () => {
  const state = {
    version: 9,
    epoch: 'e-1',
    experiments: ['draft', 'running', 'paused', 'released', 'rolled_back', 'archived'].map((s, i) => exp(`e${5 - i}`, s as Experiment['status'])),
    routes: [frozen({ key: 'r', upstream: 'http://127.0.0.1:9/', path: '/', defaultParams: { v: 1 }, timeoutMs: 5, updatedAt: at })],
    metrics: [{ key: 'ctr', type: 'proportion' as const, event: 'click' }],
    holdout: { percent: 1.5, salt: 'h' },
    events: [],
  };

  it('keeps what affects traffic (running, released) and paused, sorted by key, with the metric catalogue', () => {
    const s = buildSnapshot(state);
    expect(s.experiments.map((e) => e.status)).toEqual(['released', 'paused', 'running']);
    expect(s.experiments.map((e) => e.key)).toEqual(['e2', 'e3', 'e4']);
    expect(Object.keys(s.metrics)).toEqual(['error_rate', 'latency_ms', 'ctr']);
    expect(ConfigSnapshot.parse(s)).toMatchObject({ version: 9, epoch: 'e-1', holdout: { percent: 1.5, salt: 'h' } });
  });

  it('serializes exactly as JSON.stringify does, also when objects were serialized before', () => {
    const s = buildSnapshot(state);
    expect(serializeSnapshot(s)).toBe(JSON.stringify(s));
    const again = buildSnapshot({ ...state, version: 10, holdout: null, experiments: [...state.experiments, exp('e9', 'running', { version: 2 })] });
    expect(serializeSnapshot(again)).toBe(JSON.stringify(again));
    expect(serializeSnapshot(buildSnapshot({ version: 0, epoch: 'e-1', experiments: [], routes: [], metrics: [], holdout: null, events: [] }))).toBe(
      JSON.stringify(buildSnapshot({ version: 0, epoch: 'e-1', experiments: [], routes: [], metrics: [], holdout: null, events: [] })),
    );
  });
});
