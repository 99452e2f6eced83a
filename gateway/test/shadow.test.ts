import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bucket, EVENTS_TOPIC, type Event } from '@bunryu/core';
import { createFileEventLog } from '@bunryu/event-log';
import type { EventTap } from './support/event-tap.ts';
import { until, type TestGateway } from './support/gateway.ts';
import { startReadyGateway, type ReadyGateway } from './support/ready-gateway.ts';
import { route, snapshot } from './support/snapshots.ts';
import { startUpstream, type TestUpstream } from './support/upstream.ts';

/**
 * SPEC §13 shadow traffic at the gateway: a share of a route's requests is copied to the shadow
 * once the answer is out, so the answer and its timing do not change; at most
 * GATEWAY_SHADOW_MAX_IN_FLIGHT copies are pending, the rest dropped and counted; each copy is
 * logged as one `shadow` event with both sides, never retried.
 */
const MAX_IN_FLIGHT = 3;

describe.each(['own', 'node'] as const)('shadow traffic (%s HTTP server)', (httpServer) => {
  let primary: TestUpstream;
  let shadow: TestUpstream;
  let ready: ReadyGateway;
  let gw: TestGateway;
  let tap: EventTap;
  /** How the shadow answers: delay, status and predictions. */
  const shadowBehaviour = { delayMs: 0, status: 200 };

  beforeAll(async () => {
    primary = await startUpstream('primary', (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-model-version': 'v1' }).end(JSON.stringify({ predictions: [0.25, 0.5], echo: req.body }));
    });
    shadow = await startUpstream('shadow', (req, res) => {
      setTimeout(() => {
        res.writeHead(shadowBehaviour.status, { 'content-type': 'application/json' }).end(JSON.stringify({ predictions: [0.3, 0.4], params: JSON.parse(String(req.headers['x-ab-params'])) }));
      }, shadowBehaviour.delayMs);
    });
    const routes = [
      route('all', primary.url, { defaultParams: { version: 'v1' }, timeoutMs: 2000, shadow: { params: { version: 'v3' }, percent: 100, upstream: shadow.url, compare: 'predictions' } }),
      route('some', primary.url, { defaultParams: { version: 'v1' }, shadow: { params: { version: 'v3' }, percent: 10, upstream: shadow.url, compare: 'predictions' } }),
      route('plain', primary.url, { defaultParams: { version: 'v1' } }),
      route('hasty', primary.url, { defaultParams: { version: 'v1' }, timeoutMs: 150, shadow: { params: { version: 'v3' }, percent: 100, upstream: shadow.url, compare: 'predictions' } }),
      route('patient', primary.url, { defaultParams: { version: 'v1' }, timeoutMs: 150, shadow: { params: { version: 'v3' }, percent: 100, upstream: shadow.url, compare: 'predictions', timeoutMs: 2000 } }),
    ];
    ready = await startReadyGateway(snapshot(1, routes), { GATEWAY_HTTP_SERVER: httpServer, GATEWAY_SHADOW_MAX_IN_FLIGHT: String(MAX_IN_FLIGHT) });
    ({ gw, tap } = ready);
  });

  afterAll(async () => {
    await ready?.close();
    await primary?.close();
    await shadow?.close();
  });

  const call = async (routeName: string, unit = 'u1') => {
    const started = performance.now();
    const res = await fetch(`${gw.url}/v1/routes/${routeName}/predict`, { method: 'POST', headers: { 'x-unit-id': unit, 'content-type': 'application/json' }, body: '{"instances":[{"x":1}]}' });
    const body = await res.text();
    return { res, body, ms: performance.now() - started, requestId: res.headers.get('x-request-id')! };
  };
  const shadowEvents = async (until: (events: Event[]) => boolean, all: Event[] = []) => {
    for (let i = 0; i < 150 && !until(all); i++) {
      all.push(...(await tap.drain()).filter((e) => e.type === 'shadow'));
      if (!until(all)) await new Promise((r) => setTimeout(r, 20));
    }
    return all;
  };
  const counter = async (route: string, outcome: string) => {
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    return Number(new RegExp(`bunryu_gateway_shadow_requests_total\\{route="${route}",outcome="${outcome}"[^}]*\\} (\\d+)`).exec(text)?.[1] ?? 0);
  };

  it('answers exactly as without a shadow, at once even when the shadow is slow, and logs the pair', async () => {
    shadowBehaviour.delayMs = 400;
    try {
      const plain = await call('plain');
      const shadowed = await call('all');
      expect(shadowed.res.status).toBe(plain.res.status);
      expect(shadowed.body).toBe(plain.body);
      expect(shadowed.res.headers.get('x-model-version')).toBe('v1');
      expect(shadowed.ms).toBeLessThan(300);
      const [event] = await shadowEvents((es) => es.some((e) => e.requestId === shadowed.requestId));
      expect(event).toMatchObject({ type: 'shadow', unitId: 'u1', route: 'all', requestId: shadowed.requestId });
      expect(event!.shadow).toMatchObject({
        compare: 'predictions',
        primary: { params: { version: 'v1' }, status: 200, output: [0.25, 0.5] },
        shadow: { params: { version: 'v3' }, status: 200, output: [0.3, 0.4] },
      });
      expect(event!.shadow!.shadow.latencyMs).toBeGreaterThanOrEqual(390);
      // The shadow got the same request with its own params, marked as a shadow.
      const seen = shadow.seen.at(-1)!;
      expect(seen.body).toBe('{"instances":[{"x":1}]}');
      expect(JSON.parse(String(seen.headers['x-ab-params']))).toEqual({ version: 'v3' });
      expect(seen.headers['x-ab-shadow']).toBe('true');
      expect(seen.headers['x-request-id']).toBe(shadowed.requestId);
    } finally {
      shadowBehaviour.delayMs = 0;
    }
  });

  it("gives a copy the route's timeout, or the shadow's own when it has one", async () => {
    shadowBehaviour.delayMs = 400;
    try {
      const [hasty, patient] = [await call('hasty'), await call('patient')];
      const events = await shadowEvents((es) => es.length >= 2);
      const pair = (requestId: string) => events.find((e) => e.requestId === requestId)!.shadow!.shadow;
      expect(pair(hasty.requestId)).toMatchObject({ status: 504 });
      expect(pair(hasty.requestId).latencyMs).toBeLessThan(390);
      expect(pair(patient.requestId)).toMatchObject({ status: 200, output: [0.3, 0.4] });
      expect(pair(patient.requestId).latencyMs).toBeGreaterThanOrEqual(390);
    } finally {
      shadowBehaviour.delayMs = 0;
    }
  });

  it('shadows exactly the requests whose id falls in the share', async () => {
    const before = shadow.seen.length;
    const ids: string[] = [];
    for (let i = 0; i < 300; i++) ids.push((await call('some', `unit-${i}`)).requestId);
    const chosen = ids.filter((id) => bucket(id) < 1000);
    const events = await shadowEvents((es) => es.length >= chosen.length);
    await new Promise((r) => setTimeout(r, 100));
    expect(events.map((e) => e.requestId).sort()).toEqual(chosen.sort());
    expect(shadow.seen.length - before).toBe(chosen.length);
    expect(chosen.length).toBeGreaterThan(10);
  });

  it('drops copies beyond the in-flight bound and counts them; a failing shadow is logged once, never retried', async () => {
    shadowBehaviour.delayMs = 300;
    shadowBehaviour.status = 503;
    try {
      const [sentBefore, droppedBefore, seenBefore] = [await counter('all', 'sent'), await counter('all', 'dropped'), shadow.seen.length];
      const calls = await Promise.all(Array.from({ length: 10 }, (_, i) => call('all', `burst-${i}`)));
      for (const c of calls) expect(c.res.status).toBe(200);
      const events = await shadowEvents((es) => es.length >= MAX_IN_FLIGHT);
      await new Promise((r) => setTimeout(r, 400));
      const sent = (await counter('all', 'sent')) - sentBefore;
      const dropped = (await counter('all', 'dropped')) - droppedBefore;
      expect(dropped).toBeGreaterThan(0);
      expect(sent + dropped).toBe(10);
      expect(shadow.seen.length - seenBefore).toBe(sent);
      const all = [...events, ...(await tap.drain()).filter((e) => e.type === 'shadow')];
      expect(all).toHaveLength(sent);
      for (const e of all) expect(e.shadow!.shadow).toMatchObject({ status: 503 });
    } finally {
      shadowBehaviour.delayMs = 0;
      shadowBehaviour.status = 200;
    }
  });
});

describe('shadow traffic when the gateway stops', () => {
  it('writes the pairs of the requests it answered before its event log closes', async () => {
    const primary = await startUpstream('primary', (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"predictions":[1]}'));
    const shadow = await startUpstream('shadow', (_req, res) => setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"predictions":[2]}'), 300));
    const ready = await startReadyGateway(snapshot(1, [route('all', primary.url, { timeoutMs: 2000, shadow: { params: { version: 'v3' }, percent: 100, upstream: shadow.url, compare: 'predictions' } })]));
    const log = createFileEventLog({ dir: join(ready.gw.dataDir, 'events'), topic: EVENTS_TOPIC, pollIntervalMs: 10 });
    const consumer = log.consumer({ group: 'after-the-stop' });
    try {
      const res = await fetch(`${ready.gw.url}/v1/routes/all/predict`, { method: 'POST', headers: { 'x-unit-id': 'u1', 'content-type': 'application/json' }, body: '{}' });
      const requestId = res.headers.get('x-request-id')!;
      await res.text();
      // The copy is still at the shadow (300 ms) when the gateway is told to stop.
      const stopped = performance.now();
      await ready.close();
      expect(performance.now() - stopped).toBeGreaterThanOrEqual(200);
      expect(shadow.seen).toHaveLength(1);

      const events: Event[] = [];
      await consumer.run({ eachBatch: async (batch) => void events.push(...batch.map((r) => JSON.parse(r.value) as Event)) });
      await until(() => events.some((e) => e.type === 'shadow'), 5000, 'the shadow event in the log');
      expect(events.filter((e) => e.type === 'shadow')).toMatchObject([{ requestId, shadow: { shadow: { status: 200, output: [2] } } }]);
    } finally {
      await consumer.close();
      await primary.close();
      await shadow.close();
    }
  });
});
