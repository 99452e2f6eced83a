import { EXPERIMENT, ROUTE, type Fault, type FaultContext } from '../lib/fault.ts';
import { metric } from '../lib/stack.ts';

let writes = 0;

/** A harmless admin write: a new metric definition. */
function write(ctx: FaultContext) {
  return ctx.admin('PUT', `/v1/metrics/chaos_probe_${writes++}`, { type: 'proportion', event: 'click' });
}

async function gatewayServesExperiment(ctx: FaultContext): Promise<boolean> {
  const res = await fetch(`${ctx.stack.gateway.url}/v1/assign`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ unitId: 'probe-redis', route: ROUTE, attributes: {}, track: false }),
  });
  const body = (await res.json().catch(() => null)) as { assignments?: { experiment: string }[] } | null;
  return res.status === 200 && body?.assignments?.[0]?.experiment === EXPERIMENT;
}

async function outage(ctx: FaultContext, empty: boolean): Promise<void> {
  await ctx.stack.redis.kill();
  ctx.note('Redis SIGKILLed');
  await ctx.sleep(1_000);
  const during = await write(ctx);
  ctx.check('a write during the outage is refused within 1 s', during.status !== null && during.status >= 500 && during.ms <= 1000, `${during.status} in ${during.ms} ms`);
  const ready = Date.now();
  const readyz = await fetch(`${ctx.stack.experimentService.url}/readyz`, { signal: AbortSignal.timeout(20_000) }).then((r) => r.status, () => null);
  const readyMs = Date.now() - ready;
  ctx.check('/readyz says not ready within 1 s', readyz === 503 && readyMs <= 1000, `${readyz} in ${readyMs} ms`);
  await ctx.sleep(ctx.form === 'short' ? 2_000 : 5_000);
  await ctx.stack.redis.start(empty);
  ctx.note(empty ? 'Redis started again, empty (no data directory)' : 'Redis started again on its data (AOF)');
}

/** Redis restarts on its data: the service comes back with every route and experiment. */
export const redisRestart: Fault = {
  name: 'redis-restart-with-data',
  short: true,
  async run(ctx) {
    await outage(ctx, false);
    const recovered = await ctx.until(async () => {
      const r = await write(ctx);
      return r.status !== null && r.status < 300;
    }, 60_000);
    const routes = await ctx.admin<{ key: string }[]>('GET', '/v1/routes');
    ctx.check('the service still has the route', routes.status === 200 && JSON.stringify(routes.body).includes(`"${ROUTE}"`), String(routes.status));
    const config = await ctx.admin<{ version: number }>('GET', '/v1/config');
    const reached = await ctx.until(async () => (await metric(ctx.stack.gateway.url, 'bunryu_gateway_config_version')) === config.body?.version, 10_000);
    ctx.check('the gateway gets the config written after the restart', reached !== null, `version ${config.body?.version}`);
    return recovered;
  },
};

/**
 * Redis comes back empty (no persistence, a failover to an empty replica): the service must not
 * start over silently, and gateways must keep every route.
 */
export const redisRestartEmpty: Fault = {
  name: 'redis-restart-empty',
  short: true,
  async run(ctx) {
    await outage(ctx, true);
    // Recovered: the service has made up its mind about the empty store (it answers a write).
    const recovered = await ctx.until(async () => (await write(ctx)).status !== null, 60_000);
    const after = await write(ctx);
    const routes = await ctx.admin('GET', '/v1/routes');
    const kept = routes.status === 200 && JSON.stringify(routes.body).includes(`"${ROUTE}"`);
    ctx.check('a write to the empty store is refused, or the state is still there', kept || (after.status !== null && after.status >= 400), `write ${after.status}, route kept: ${kept}`);
    await ctx.sleep(3_000);
    ctx.check('the gateway still serves the route and its experiment', await gatewayServesExperiment(ctx).catch(() => false));
    return recovered;
  },
};
