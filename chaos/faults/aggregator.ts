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
  short: true,
  async run(ctx) {
    const first = ctx.stack.aggregators[0]!;
    const second = await ctx.stack.addAggregator();
    ctx.note(`second aggregator ${second.instance} joined the group`);
    // The first is caught up before the group has rebalanced: settled means the second ingests too.
    const ingesting = async () => ((await metric(second.url, 'bunryu_aggregator_events_ingested_total')) ?? 0) > 0;
    const settled = await ctx.until(async () => (await ingesting()) && (await caughtUp(ctx, ctx.rate * 2)), 60_000);
    const secondBefore = await metric(second.url, 'bunryu_aggregator_events_ingested_total');
    ctx.check('the group settles with two members', settled !== null, settled === null ? 'no partitions for the second, or lag stayed high' : `${(settled / 1000).toFixed(1)} s`);
    ctx.check('the second aggregator was given partitions', (secondBefore ?? 0) > 0, `${secondBefore} events ingested`);
    const slack = ctx.rate * 2;
    await first.signal('SIGKILL');
    const t0 = Date.now();
    ctx.note('first aggregator SIGKILLed');
    // Its partitions are stranded until the group notices: the lag grows past the slack, and the
    // recovery is the time from the kill until the survivor has caught up on them.
    const stranded = await ctx.until(async () => ((await ctx.groupLag()) ?? 0) > slack, 15_000);
    ctx.note(stranded === null ? 'the lag never exceeded two seconds of traffic' : `partitions stranded: lag above two seconds of traffic ${(stranded / 1000).toFixed(1)} s after the kill`);
    const caught = await ctx.until(() => caughtUp(ctx, slack), 120_000);
    const recovered = caught === null ? null : stranded === null ? 0 : Date.now() - t0;
    await first.start();
    await second.stop();
    ctx.note('first aggregator started again, second stopped');
    return recovered;
  },
};
