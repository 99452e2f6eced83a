import { EXPERIMENT, ROUTE, type Fault } from '../lib/fault.ts';
import { metric } from '../lib/stack.ts';

/**
 * The experiment-service is killed and, while it is down, the gateway restarts: it must serve
 * from the snapshot it persisted, and catch up on the config stream when the service returns.
 */
export const experimentServiceKill: Fault = {
  name: 'experiment-service-sigkill-gateway-restart',
  short: true,
  gatewayDown: true,
  async run(ctx) {
    const { experimentService, gateway } = ctx.stack;
    await experimentService.signal('SIGKILL');
    ctx.note('experiment-service SIGKILLed');
    await ctx.sleep(2_000);
    await gateway.stop();
    await gateway.start();
    ctx.note('gateway restarted (SIGTERM, start) while the experiment-service is down');
    const res = await fetch(`${gateway.url}/v1/assign`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ unitId: 'probe-snapshot', route: ROUTE, attributes: {}, track: false }),
    });
    const body = (await res.json().catch(() => null)) as { assignments?: { experiment: string }[] } | null;
    ctx.check('the restarted gateway serves the experiment from its disk snapshot', res.status === 200 && body?.assignments?.[0]?.experiment === EXPERIMENT, `${res.status} ${JSON.stringify(body?.assignments ?? null)}`);
    await ctx.sleep(ctx.form === 'short' ? 3_000 : 8_000);
    await experimentService.start();
    ctx.note('experiment-service started again');
    return ctx.until(async () => (await metric(gateway.url, 'bunryu_gateway_config_stream_connected')) === 1, 60_000);
  },
};
