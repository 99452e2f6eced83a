import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';

/**
 * JSONEachRow rows given as strings are sent as they are: the store inserts events' validated
 * JSON text without parsing it into objects only to serialise it again.
 */
const json = { parse: JSON.parse, stringify: (value: unknown): string => (typeof value === 'string' ? value : JSON.stringify(value)) };

/** A ClickHouse server (CLICKHOUSE_URL; credentials and database may be in the URL). */
export function clickHouseServerClient(url: string): ClickHouseClient {
  return createClient({ url, request_timeout: 30_000, json });
}

/**
 * ClickHouse in-process (SPEC §9): chdb behind @clickhouse/client, data in `path`. chdb binds one
 * data directory per process.
 */
export function chdbClient(path: string): ClickHouseClient {
  // chdb declares the Connection interface from @clickhouse/client-common 1.23.0, which the
  // client 1.23.1 bundles a structurally equal copy of; only the declarations differ.
  const connection = createChdbConnection({ path }) as unknown as NonNullable<NonNullable<Parameters<typeof createClient>[0]>['connection']>;
  return createClient({ connection, json });
}
