import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { interleave, type Event } from '@bunryu/core';
import type { EventTap } from './support/event-tap.ts';
import type { TestGateway } from './support/gateway.ts';
import { startReadyGateway, type ReadyGateway } from './support/ready-gateway.ts';
import { experiment, route, snapshot } from './support/snapshots.ts';
import { startUpstream, type TestUpstream } from './support/upstream.ts';

/**
 * SPEC §13 at the gateway: an interleaving experiment's request goes to both variants' rankers at
 * once, each with its own params; the answer is their team-draft merge seeded by the request id
 * (core's `interleave`, itself checked against the paper's pseudo-code), and the exposure names
 * the variant of every item. One side failing serves the other's list, uncredited.
 */
const LISTS: Record<string, string[]> = {
  '1': ['x', 'a1', 'a2', 's', 'a3'],
  '2': ['x', 'b1', 's', 'b2', 'b3'],
};

describe.each(['own', 'node'] as const)('interleaving at the gateway (%s HTTP server)', (httpServer) => {
  let ranker: TestUpstream;
  let ready: ReadyGateway;
  let gw: TestGateway;
  let tap: EventTap;
  /** How each version answers: a list (delayed), a failure, or something that is not a list. */
  const behaviour: Record<string, 'list' | 'fail' | 'not-a-list'> = { '1': 'list', '2': 'list' };
  let delayMs = 0;

  beforeAll(async () => {
    ranker = await startUpstream('ranker', (req, res) => {
      const version = String(JSON.parse(String(req.headers['x-ab-params'])).version);
      setTimeout(() => {
        if (behaviour[version] === 'fail') return void res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"down"}');
        const body = behaviour[version] === 'list' ? { version, items: LISTS[version]!.map((id, i) => ({ id, score: 1 - i / 10, from: version })) } : { predictions: [0.1] };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      }, delayMs);
    });
    const routes = [route('rank', ranker.url, { path: '/rank', defaultParams: { model: 'recommend' }, fallback: { status: 200, body: { items: [], fallback: true } } })];
    const interleaved = experiment('il', 'rank', { design: 'interleave' });
    ready = await startReadyGateway(snapshot(1, routes, [interleaved]), { GATEWAY_HTTP_SERVER: httpServer });
    ({ gw, tap } = ready);
  });

  afterAll(async () => {
    await ready?.close();
    await ranker?.close();
  });

  async function call(unit: string) {
    const res = await fetch(`${gw.url}/v1/routes/rank`, { method: 'POST', headers: { 'x-unit-id': unit, 'content-type': 'application/json' }, body: '{"items":[]}' });
    const requestId = res.headers.get('x-request-id')!;
    const text = await res.text();
    let exposure: Event | undefined;
    for (let i = 0; i < 50 && !exposure; i++) {
      exposure = (await tap.drain()).find((e) => e.requestId === requestId);
      if (!exposure) await new Promise((r) => setTimeout(r, 20));
    }
    return { res, requestId, body: JSON.parse(text) as Record<string, unknown>, exposure: exposure! };
  }

  it('answers the team-draft merge of both rankings seeded by the request id, and exposes the variant of each item', async () => {
    Object.assign(behaviour, { '1': 'list', '2': 'list' });
    const firsts = new Set<string>();
    for (let u = 0; u < 20; u++) {
      const { res, requestId, body, exposure } = await call(`unit-${u}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-ab-interleaved')).toBe('il');
      const want = interleave(LISTS['1']!, LISTS['2']!, requestId, 5);
      const items = body.items as { id: string; from: string }[];
      expect(items.map((it) => it.id)).toEqual(want.items);
      // Each item is the object its own ranking answered.
      expect(items.map((it) => it.from)).toEqual(want.teams.map((t) => (t === 'a' ? '1' : '2')));
      expect(exposure.interleaving).toEqual({ experiment: 'il', items: want.items, teams: want.teams.map((t) => (t === 'a' ? 'control' : 'treatment')) });
      expect(exposure.status).toBe(200);
      firsts.add(want.teams[0]!);
    }
    // Both rankings lead some lists: the coin is the request's, not the unit's variant.
    expect(firsts).toEqual(new Set(['a', 'b']));
  });

  it('asks both rankers at once, each with its own params and the same request id', async () => {
    Object.assign(behaviour, { '1': 'list', '2': 'list' });
    delayMs = 150;
    try {
      const before = ranker.seen.length;
      const started = performance.now();
      const { res, requestId } = await call('unit-parallel');
      const took = performance.now() - started;
      expect(res.status).toBe(200);
      const seen = ranker.seen.slice(before);
      expect(seen.map((s) => JSON.parse(String(s.headers['x-ab-params']))).sort((a, b) => a.version.localeCompare(b.version))).toEqual([
        { model: 'recommend', version: '1' },
        { model: 'recommend', version: '2' },
      ]);
      expect(seen.map((s) => s.headers['x-request-id'])).toEqual([requestId, requestId]);
      expect(seen.map((s) => s.url)).toEqual(['/rank', '/rank']);
      // In parallel: well under two delays.
      expect(took).toBeLessThan(280);
    } finally {
      delayMs = 0;
    }
  });

  it('serves the other side\'s answer as it came when one ranker fails or answers no list, and does not credit it', async () => {
    for (const broken of ['fail', 'not-a-list'] as const) {
      Object.assign(behaviour, { '1': 'list', '2': broken });
      const { res, body, exposure } = await call(`unit-${broken}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-ab-interleaved')).toBeNull();
      expect(body).toEqual({ version: '1', items: LISTS['1']!.map((id, i) => ({ id, score: 1 - i / 10, from: '1' })) });
      expect(exposure.interleaving).toBeUndefined();
      // The exposure counts the failing ranker's error.
      expect(exposure.status).toBe(broken === 'fail' ? 503 : 502);
    }
  });

  it('answers from the route\'s fallback when neither ranker answers a list', async () => {
    Object.assign(behaviour, { '1': 'fail', '2': 'fail' });
    const { res, body, exposure } = await call('unit-both-down');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-ab-fallback')).toBe('true');
    expect(body).toEqual({ items: [], fallback: true });
    expect(exposure).toMatchObject({ status: 503, fallback: 'route' });
    expect(exposure.interleaving).toBeUndefined();
    Object.assign(behaviour, { '1': 'list', '2': 'list' });
  });
});
