/**
 * Issue #23 / SPEC §16: what BUNRYU_EVENT_POLICY costs on `/v1/events`. The proxy bench's events
 * scenario (500 click events per call, 20 running experiments on the route, the gateway bundle,
 * the embedded event log) against three one-process gateways that differ only in the policy;
 * under `warn` and `strict` every event is checked against an approved declaration of `click`
 * (and passes, the common case), under `open` nothing is checked. The target: within 10% of open.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EventDeclaration } from '@bunryu/core';
import { startChild, type ChildServer } from '../../bench/lib/child.ts';
import { load } from '../../bench/lib/load.ts';
import { cpuSeconds, processTree } from '../../bench/lib/proc.ts';
import type { BenchResult } from '../../bench/lib/result.ts';
import { buildGateway } from '../build.ts';
import { configSnapshot, fakeExperimentService } from './proxy.bench.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const POLICIES = ['open', 'warn', 'strict'] as const;

const click: EventDeclaration = {
  type: 'click',
  description: 'A click on a recommended item',
  owner: 'bench',
  attributes: { country: { type: 'string', enum: ['JP', 'US'] }, position: { type: 'number' } },
  value: { unit: 'clicks' },
  status: 'approved',
  version: 1,
  proposedBy: 'bench',
  updatedAt: '2026-01-01T00:00:00.000Z',
  approved: { description: 'A click on a recommended item', owner: 'bench', attributes: { country: { type: 'string', enum: ['JP', 'US'] }, position: { type: 'number' } }, value: { unit: 'clicks' } },
};

function cpuMs(pid: number | undefined): number | null {
  if (pid === undefined || process.platform !== 'linux') return null;
  const seconds = cpuSeconds(processTree(pid));
  return seconds === null ? null : seconds * 1000;
}

export async function run(): Promise<BenchResult[]> {
  const bundle = await buildGateway();
  const dir = await mkdtemp(join(tmpdir(), 'bunryu-event-policy-bench-'));
  const children: ChildServer[] = [];
  let es: Server | null = null;
  try {
    es = await fakeExperimentService({ ...configSnapshot('http://127.0.0.1:9'), events: { click } });
    const esUrl = `http://127.0.0.1:${(es.address() as AddressInfo).port}`;
    const gateways = new Map<string, ChildServer>();
    for (const policy of POLICIES) {
      const child = await startChild(
        bundle,
        { EXPERIMENT_SERVICE_URL: esUrl, BUNRYU_DATA_DIR: join(dir, policy), GATEWAY_WORKERS: '1', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', KAFKA_BROKERS: '', BUNRYU_EVENT_POLICY: policy },
        /listening on http:\/\/[\d.]+:(\d+)/,
      );
      children.push(child);
      gateways.set(policy, child);
    }
    const events = Array.from({ length: 500 }, (_, i) => ({ type: 'click', unitId: `user-${i}`, route: 'recommend', value: 1, attributes: { country: 'JP', position: i % 10 } }));
    const body = JSON.stringify({ events });
    for (const [policy, gw] of gateways) {
      // Ready, and checking: a strict gateway without the catalogue would reject every event.
      for (let i = 0; ; i++) {
        const r = await fetch(`${gw.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).catch(() => null);
        const answer = r?.status === 202 ? ((await r.json()) as { accepted: number }) : null;
        if (answer?.accepted === 500) break;
        if (i > 100) throw new Error(`${policy} gateway does not accept the bench's events`);
        await new Promise((res) => setTimeout(res, 100));
      }
      await load({ url: `${gw.url}/v1/events`, method: 'POST', body, headers: { 'content-type': 'application/json' }, seconds: 1, connections: 8 }); // JIT
    }
    const measured = new Map<string, { eventsPerSecond: number; cpuUsPerCall: number; p99: number }>();
    for (const [policy, gw] of gateways) {
      const cpu0 = cpuMs(gw.process.pid);
      const r = await load({ url: `${gw.url}/v1/events`, method: 'POST', body, headers: { 'content-type': 'application/json' }, seconds: SECONDS, connections: 8 });
      const cpu = cpuMs(gw.process.pid);
      if (r.errors > 0 || r.non2xx > 0) throw new Error(`${policy}: ${r.errors} errors, ${r.non2xx} non-2xx answers`);
      measured.set(policy, { eventsPerSecond: r.rps * 500, cpuUsPerCall: cpu0 === null || cpu === null ? NaN : ((cpu - cpu0) * 1000) / r.total, p99: r.p99 });
    }
    const open = measured.get('open')!;
    return POLICIES.map((policy) => {
      const m = measured.get(policy)!;
      return {
        scenario: 'events',
        metric: `gateway /v1/events ingest, BUNRYU_EVENT_POLICY=${policy} vs open (one process, 500 per call)`,
        value: m.eventsPerSecond,
        unit: 'events/s',
        baseline: open.eventsPerSecond,
        ratio: m.eventsPerSecond / open.eventsPerSecond,
        ...(policy === 'open' ? {} : { target: '>= 0.9' }),
        note: `CPU ${m.cpuUsPerCall.toFixed(0)} µs per call (open ${open.cpuUsPerCall.toFixed(0)}), p99 ${m.p99} ms`,
      };
    });
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    await new Promise<void>((r) => (es ? es.close(() => r()) : r()));
    await rm(dir, { recursive: true, force: true });
  }
}
