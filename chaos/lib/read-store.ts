/**
 * Child process of store.ts: prints, one JSON line each, the distinct events of units whose id
 * starts with argv[3] from the chdb store at argv[2]. Distinct on (eventId, ts, value): the
 * rollups the results read hold sets of those tuples, so a redelivered copy is one event and the
 * same event id with another time is two.
 */
import { chdbClient } from '../../aggregator/src/metrics-store/clickhouse-client.ts';

const [path, prefix] = process.argv.slice(2);
if (!path || !prefix) throw new Error('usage: read-store.ts <chdb dir> <unit prefix>');
const client = chdbClient(path);
const rs = await client.query({
  query: `SELECT DISTINCT eventId, type, requestId, unitId, ts, value, status FROM events WHERE startsWith(unitId, {prefix:String})`,
  query_params: { prefix },
  format: 'JSONEachRow',
});
for await (const rows of rs.stream()) {
  for (const row of rows) process.stdout.write(row.text + '\n');
}
await client.close();
