import { caughtUp, type Fault } from '../lib/fault.ts';
import { metric } from '../lib/stack.ts';

/**
 * Kafka goes down, the gateway spills to disk, and the gateway is killed with events on disk: the
 * one started after it must replay them once Kafka is back.
 */
export const gatewayKillDuringKafkaOutage: Fault = {
  name: 'gateway-sigkill-kafka-outage',
  short: true,
  gatewayDown: true,
  async run(ctx) {
    const { gateway, kafka } = ctx.stack;
    await kafka.kill();
    ctx.note('Kafka broker SIGKILLed');
    const spilling = await ctx.until(async () => ((await metric(gateway.url, 'bunryu_gateway_event_spill_pending')) ?? 0) > 0, 30_000);
    ctx.check('the gateway spills to disk while Kafka is down', spilling !== null, spilling === null ? 'nothing spilled within 30 s' : `after ${(spilling / 1000).toFixed(1)} s`);
    await ctx.sleep(3_000);
    await gateway.signal('SIGKILL');
    ctx.note('gateway SIGKILLed with its spill on disk');
    await ctx.sleep(2_000);
    await gateway.start();
    const pending = await metric(gateway.url, 'bunryu_gateway_event_spill_pending');
    ctx.check('the restarted gateway finds the spill', (pending ?? 0) > 0, `${pending} events pending`);
    await ctx.sleep(3_000);
    await kafka.start();
    ctx.note('Kafka broker started again');
    return ctx.until(() => caughtUp(ctx, ctx.rate * 2), 120_000);
  },
};

/** Spill segments may grow to this many KiB (RLIMIT_FSIZE): the spill's disk is "full" beyond it. */
const SPILL_LIMIT_KIB = 32;

/**
 * The gateway's spill cannot grow (its files are capped with `ulimit -f`, so writes past the cap
 * fail with EFBIG, as they would with ENOSPC on a full disk) while Kafka is down: a clear error, a
 * metric, and no event accepted and then dropped.
 */
export const gatewaySpillDiskFull: Fault = {
  name: 'gateway-spill-disk-full',
  short: true,
  gatewayDown: true,
  async run(ctx) {
    const { gateway, kafka } = ctx.stack;
    await gateway.stop();
    gateway.wrap = (argv) => ['bash', '-c', `ulimit -f ${SPILL_LIMIT_KIB} && exec "$0" "$@"`, ...argv];
    await gateway.start();
    ctx.note(`gateway restarted with its files capped at ${SPILL_LIMIT_KIB} KiB`);
    await kafka.kill();
    ctx.note('Kafka broker SIGKILLed');
    await ctx.sleep(ctx.form === 'short' ? 10_000 : 20_000);
    const lines = gateway.log.filter((l) => /spill/i.test(l) && /EFBIG|ENOSPC|full|too large/i.test(l));
    ctx.check('a clear error in the gateway log', lines.length > 0, lines[0]?.slice(0, 160) ?? 'none');
    const text = await (await fetch(`${gateway.url}/metrics`)).text();
    const series = text.split('\n').filter((l) => !l.startsWith('#') && /spill/i.test(l) && /fail|error/i.test(l) && Number(l.slice(l.lastIndexOf(' ') + 1)) > 0);
    ctx.check('a metric counts the failed spill writes', series.length > 0, series[0] ?? 'no spill failure series above 0');
    await kafka.start();
    ctx.note('Kafka broker started again');
    const recovered = await ctx.until(() => caughtUp(ctx, ctx.rate * 2), 120_000);
    await gateway.stop();
    gateway.wrap = null;
    await gateway.start();
    ctx.note('gateway restarted without the cap');
    return recovered;
  },
};
