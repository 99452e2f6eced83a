import { join } from 'node:path';
import type { Event } from '@bunryu/core';
import { SpillLog } from '../../src/events/spill-log.ts';

/** The events in a gateway's disk spill: what a gateway started after this one died would replay. */
export async function spilledEvents(dataDir: string): Promise<Event[]> {
  const spill = await SpillLog.open(join(dataDir, 'gateway', 'spill'));
  const events: Event[] = [];
  for (let batch = await spill.read(10_000); batch !== null && batch.records.length > 0; batch = await spill.read(10_000)) {
    events.push(...batch.records.map((r) => JSON.parse(r.value) as Event));
    await batch.commit();
  }
  await spill.close();
  return events;
}
