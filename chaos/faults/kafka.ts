import { caughtUp, type Fault } from '../lib/fault.ts';

/** The broker is killed (no clean shutdown) and started again on its data after a while. */
export const kafkaBrokerKill: Fault = {
  name: 'kafka-broker-sigkill',
  short: true,
  async run(ctx) {
    await ctx.stack.kafka.kill();
    ctx.note('Kafka broker SIGKILLed');
    await ctx.sleep(ctx.form === 'short' ? 8_000 : 20_000);
    const backlog = await ctx.gatewayBacklog();
    ctx.check('the gateway holds the events back while Kafka is down', (backlog ?? 0) > 0, `${backlog} events in memory or on disk`);
    await ctx.stack.kafka.start();
    ctx.note('Kafka broker started again');
    // The two halves of the catch-up, timed apart: the gateway's replay, then the consumers'.
    const replayed = await ctx.until(async () => ((await ctx.gatewayBacklog()) ?? Infinity) <= ctx.rate * 2, 120_000);
    ctx.note(replayed === null ? 'the gateway did not replay its backlog' : `the gateway replayed its backlog in ${(replayed / 1000).toFixed(2)} s`);
    const consumed = await ctx.until(() => caughtUp(ctx, ctx.rate * 2), 120_000);
    return replayed === null || consumed === null ? null : replayed + consumed;
  },
};
