/**
 * The autopilot's drill on the real processes (SPEC §15 time to rollback): a route whose
 * treatment is served by an upstream that fails a share of its requests, a guarded rollout at
 * 5%, steady traffic of distinct units through the gateway, and the clock from the first bad
 * answer a client sees to the last answer the gateway gave under the experiment.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { adminClient, waitFor, type Stack } from './stack.ts';

export interface DrillOptions {
  /** Share of the treatment upstream's answers that are 500s. */
  failRate: number;
  requestsPerSecond: number;
  /** Gives up after this long without a rollback. */
  timeoutMs: number;
  key: string;
  /** The rollout plan; SPEC §10's default steps and guardrails when absent. */
  rollout?: object;
}

export interface DrillResult {
  /** The experiment's status when the autopilot acted (`running` if it never did in time). */
  finalStatus: string;
  /** The autopilot's actions, in order. */
  actions: string[];
  /** From the first 5xx a client got from the treatment to the last answer still under the experiment. */
  secondsToRollback: number;
  /** Distinct units the gateway assigned to the treatment. */
  treatmentUnits: number;
  requests: number;
  /** The autopilot's audit entry for a rollback. */
  decision: { reason?: string; message?: string } | undefined;
}

/** An upstream that answers every `1/failRate`-th request with a 500 (deterministic, so runs compare). */
export async function failingUpstream(failRate: number): Promise<{ url: string; close(): Promise<void> }> {
  let n = 0;
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      n++;
      const fail = failRate > 0 && Math.floor(n * failRate) !== Math.floor((n - 1) * failRate);
      res.writeHead(fail ? 500 : 200, { 'content-type': 'application/json' });
      res.end(fail ? '{"error":"model failed"}' : '{"predictions":[0.5]}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => server.close(() => r())) };
}

export async function rollbackDrill(stack: Stack, o: DrillOptions): Promise<DrillResult> {
  const admin = adminClient(stack.url['experiment-service'], stack.token);
  const good = await failingUpstream(0);
  const bad = await failingUpstream(o.failRate);
  const route = `route-${o.key}`;
  try {
    const put = await admin('PUT', `/v1/routes/${route}`, { upstream: good.url, path: '/predict', defaultParams: { version: 'v1' }, timeoutMs: 2000 });
    if (put.status >= 300) throw new Error(`route: ${JSON.stringify(put.body)}`);
    const created = await admin('POST', '/v1/experiments', {
      key: o.key,
      route,
      variants: [
        { key: 'control', weight: 95, params: { version: 'v1' } },
        { key: 'treatment', weight: 5, params: { version: 'v2' }, upstream: bad.url },
      ],
      metrics: { guardrails: ['error_rate', 'latency_ms'] },
      rollout: o.rollout ?? {
        steps: [
          { weights: { control: 95, treatment: 5 }, minMinutes: 10, minUnits: 200 },
          { weights: { control: 75, treatment: 25 }, minMinutes: 30, minUnits: 1000 },
          { weights: { control: 50, treatment: 50 }, minMinutes: 60, minUnits: 5000 },
        ],
        guardrails: [
          { metric: 'error_rate', harm: 'increase', margin: 0 },
          { metric: 'latency_ms', harm: 'increase', margin: 0.05 },
        ],
      },
    });
    if (created.status !== 201) throw new Error(`experiment: ${JSON.stringify(created.body)}`);
    const started = await admin('POST', `/v1/experiments/${o.key}/start`);
    if (started.status !== 200) throw new Error(`start: ${JSON.stringify(started.body)}`);
    await waitFor('the gateway to assign the rollout', async () => {
      const res = await fetch(`${stack.url.gateway}/v1/assign`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ unitId: 'probe', route, attributes: {}, track: false }) });
      return ((await res.json()) as { assignments: unknown[] }).assignments.length === 1;
    });

    let firstBadAt = Infinity;
    let lastUnderExperimentAt = 0;
    const treatmentUnits = new Set<string>();
    let requests = 0;
    let status = 'running';
    const started_ = Date.now();
    const interval = 1000 / o.requestsPerSecond;
    const inFlight = new Set<Promise<void>>();
    let next = Date.now();
    // Steady traffic, every request a new unit, until the experiment is rolled back and a second more has passed.
    let stopAt = Infinity;
    const poll = setInterval(async () => {
      const e = await admin<{ status: string }>('GET', `/v1/experiments/${o.key}`);
      if (e.body.status !== 'running' && status === 'running') {
        status = e.body.status;
        stopAt = Date.now() + 2000;
      }
    }, 200);
    try {
      while (Date.now() < stopAt && Date.now() - started_ < o.timeoutMs) {
        const unit = `${o.key}-u${requests++}`;
        const p = (async () => {
          const sentAt = Date.now();
          const res = await fetch(`${stack.url.gateway}/v1/routes/${route}/predict`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-unit-id': unit }, body: '{"instances":[{"x":1}]}' });
          await res.arrayBuffer();
          const assigned = res.headers.get('x-ab-assignments') ?? '';
          if (assigned.includes(`${o.key}=`)) lastUnderExperimentAt = Math.max(lastUnderExperimentAt, sentAt);
          if (assigned.includes(`${o.key}=treatment`)) {
            treatmentUnits.add(unit);
            if (res.status >= 500) firstBadAt = Math.min(firstBadAt, Date.now());
          }
        })().catch(() => undefined);
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
        next += interval;
        const wait = next - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      await Promise.all(inFlight);
    } finally {
      clearInterval(poll);
    }
    const history = await admin<{ action: string; actor: { name: string }; decision?: { reason?: string; message?: string } }[]>('GET', `/v1/experiments/${o.key}/history`);
    const byAutopilot = history.body.filter((h) => h.actor.name === 'autopilot');
    const entry = byAutopilot.find((h) => h.action === 'rollback');
    return {
      finalStatus: status,
      actions: byAutopilot.map((h) => h.action),
      secondsToRollback: (lastUnderExperimentAt - firstBadAt) / 1000,
      treatmentUnits: treatmentUnits.size,
      requests,
      decision: entry?.decision,
    };
  } finally {
    await good.close();
    await bad.close();
  }
}
