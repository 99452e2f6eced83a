import type { ConfigSnapshots } from '../config-snapshot/config-snapshots.ts';
import { ExportDocument, ImportDocument, ImportResult } from '../openapi/schemas.ts';
import type { ExperimentStore, StoreExport } from '../store/experiment-store.ts';
import { endpoint, type Endpoint } from './endpoint.ts';

/** An export of many experiments with their audit log is far larger than any other body. */
const IMPORT_BODY_LIMIT = 256 * 1024 * 1024;

/** The operator's way back after the store lost its data: take everything out, put it back. */
export function backupEndpoints(store: ExperimentStore, snapshots: ConfigSnapshots): Endpoint<never>[] {
  return [
    endpoint({
      method: 'GET',
      url: '/v1/export',
      operationId: 'exportStore',
      summary: 'Every experiment (drafts included), route, metric, the holdout and the whole audit log, read at one config version',
      role: 'admin',
      response: ExportDocument,
      errors: ['BUNRYU_NOT_READY'],
      handler: async () => store.exportAll(),
    }),
    endpoint({
      method: 'POST',
      url: '/v1/import',
      operationId: 'importStore',
      summary:
        'Writes an export into an empty store (or one that lost its data), all or nothing, under a new epoch; gateways take the new epoch only when told to (GATEWAY_ACCEPT_EPOCH)',
      role: 'admin',
      body: ImportDocument,
      bodyLimit: IMPORT_BODY_LIMIT,
      response: ImportResult,
      errors: ['BUNRYU_ALREADY_EXISTS', 'BUNRYU_NOT_READY'],
      handler: async ({ body, request }) => {
        // Validation rebuilds objects in schema order: keep the order of the export instead, so
        // an export imported and exported again is the same bytes.
        const data = inOrderOf(request.body, body) as StoreExport;
        const { version, epoch } = await store.importAll({ ...data, epoch: data.epoch ?? '' });
        await snapshots.refresh();
        return { epoch, version, experiments: data.experiments.length, routes: data.routes.length, metrics: data.metrics.length, audit: data.audit.length };
      },
    }),
  ] as Endpoint<never>[];
}

/** `parsed` with the keys of every object in the order they have in `raw` (added defaults last). */
function inOrderOf(raw: unknown, parsed: unknown): unknown {
  if (Array.isArray(parsed)) return parsed.map((v, i) => inOrderOf(Array.isArray(raw) ? raw[i] : undefined, v));
  if (parsed === null || typeof parsed !== 'object') return parsed;
  const source = raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
  const p = parsed as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(source)) if (key in p) out[key] = inOrderOf(source[key], p[key]);
  for (const key of Object.keys(p)) if (!(key in out)) out[key] = inOrderOf(undefined, p[key]);
  return out;
}
