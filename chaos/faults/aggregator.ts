import { caughtUp, type Fault } from '../lib/fault.ts';
import { metric } from '../lib/stack.ts';

/** The aggregator is killed while it consumes steady traffic, so with a batch in hand. */
export const aggregatorKill: Fault = {
  name: 'aggregator-sigkill',
  short: true,
  async run(ctx) {
    const aggregator = ctx.stack.aggregators[0]!;
    const ingested = await metric(aggregator.url, 'bunryu_aggregator_events_ingested_total');
    await aggregator.signal('SIGKILL');
    ctx.note(`aggregator SIGKILLed after ${ingested} events ingested`);
    await ctx.sleep(ctx.form === 'short' ? 3_000 : 8_000);
    await aggregator.start();
    ctx.note('aggregator started again');
    return ctx.until(() => caughtUp(ctx, ctx.rate * 2), 120_000);
  },
};

/**
 * Two aggregators share the consumer group (each with a store of its own here, read together at
 * the end as one shared ClickHouse would be); one is killed and the other must take over its
 * partitions.
 */
export const twoAggregatorsOneKilled: Fault = {
  name: 'two-aggregators-one-killed',
  short: false,
  async run(ctx) {
    const first = ctx.stack.aggregators[0]!;
    const second = await ctx.stack.addAggregator();
    ctx.note(`second aggregator ${second.instance} joined the group`);
    const settled = await ctx.until(() => caughtUp(ctx, ctx.rate * 2), 60_000);
    ctx.check('the group settles with two members', settled !== null, settled === null ? 'lag stayed high' : `${(settled / 1000).toFixed(1)} s`);
    const secondBefore = await metric(second.url, 'bunryu_aggregator_events_ingested_total');
    ctx.check('the second aggregator was given partitions', (secondBefore ?? 0) > 0, `${secondBefore} events ingested`);
    await first.signal('SIGKILL');
    ctx.note('first aggregator SIGKILLed');
    const recovered = await ctx.until(() => caughtUp(ctx, ctx.rate * 2), 120_000);
    await first.start();
    await second.stop();
    ctx.note('first aggregator started again, second stopped');
    return recovered;
  },
};
