import { ROUTE, ROUTE_TIMEOUT_MS, type Fault, type FaultContext } from '../lib/fault.ts';

let probes = 0;

/** A request of our own through the gateway (a unit outside the traffic's): is the model back? */
async function answeredByModel(ctx: FaultContext): Promise<boolean> {
  const res = await fetch(`${ctx.stack.gateway.url}/v1/routes/${ROUTE}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-unit-id': `probe-${probes++}` },
    body: JSON.stringify({ instances: [{ user_affinity: 0, item_popularity: 0.5, recency: 1, price: 10, position: 1 }] }),
    signal: AbortSignal.timeout(2000),
  });
  await res.arrayBuffer();
  return res.status === 200 && res.headers.get('x-ab-fallback') !== 'true';
}

/** Every answer from `t0` (after half a second in flight) came from the fallback; their latencies. */
function checkFallbacks(ctx: FaultContext, t0: number, while_: string) {
  const during = ctx.traffic.requests.filter((r) => r.sentAt >= t0 + 500);
  const fallbacks = during.filter((r) => r.fallback);
  ctx.check(`answers from the fallback while the model-server ${while_}`, fallbacks.length > 0 && fallbacks.length === during.filter((r) => r.status !== null).length, `${fallbacks.length} of ${during.length}`);
  const latencies = fallbacks.map((r) => r.latencyMs).sort((a, b) => a - b);
  return { p99: latencies[Math.floor(latencies.length * 0.99)] ?? 0, slowest: latencies.at(-1) ?? 0 };
}

/** The model-server is killed: the route's fallback answers, and the failures reach error_rate. */
export const modelServerKill: Fault = {
  name: 'model-server-sigkill',
  short: true,
  async run(ctx) {
    const t0 = Date.now();
    await ctx.stack.modelServer.signal('SIGKILL');
    ctx.note('model-server SIGKILLed');
    await ctx.sleep(ctx.form === 'short' ? 5_000 : 10_000);
    checkFallbacks(ctx, t0, 'is down');
    await ctx.stack.modelServer.start();
    ctx.note('model-server started again');
    return ctx.until(() => answeredByModel(ctx), 60_000);
  },
};

/** The model-server is stopped (SIGSTOP: it accepts connections and never answers), then resumed. */
export const modelServerStop: Fault = {
  name: 'model-server-sigstop',
  short: false,
  async run(ctx) {
    const t0 = Date.now();
    await ctx.stack.modelServer.signal('SIGSTOP');
    ctx.note('model-server SIGSTOPped');
    await ctx.sleep(10_000);
    const { p99, slowest } = checkFallbacks(ctx, t0, 'hangs');
    // The route's timeout plus room for a busy, shared 2-core machine.
    ctx.check(`fallback within timeoutMs (${ROUTE_TIMEOUT_MS} ms) + 200 ms, p99`, p99 <= ROUTE_TIMEOUT_MS + 200, `p99 ${p99} ms, slowest ${slowest} ms`);
    await ctx.stack.modelServer.signal('SIGCONT');
    ctx.note('model-server SIGCONTinued');
    return ctx.until(() => answeredByModel(ctx), 60_000);
  },
};
