import type { ConfigSnapshot, ExperimentStatus } from '@bunryu/core';
import { metricCatalogue } from '../catalog/config-catalog.ts';
import type { StoreState } from '../store/experiment-store.ts';

/**
 * What gateways and the aggregator need: running experiments assign, released ones apply their
 * variant; paused ones are listed so a gateway can tell "paused" from "unknown". Drafts and
 * finished experiments never affect traffic and stay out, which keeps the snapshot small.
 */
export const SNAPSHOT_STATUSES: readonly ExperimentStatus[] = ['running', 'paused', 'released'];

export function buildSnapshot(state: StoreState): ConfigSnapshot {
  return {
    version: state.version,
    epoch: state.epoch,
    routes: Object.fromEntries([...state.routes].sort((a, b) => (a.key < b.key ? -1 : 1)).map((r) => [r.key, r])),
    experiments: state.experiments.filter((e) => SNAPSHOT_STATUSES.includes(e.status)).sort((a, b) => (a.key < b.key ? -1 : 1)),
    metrics: metricCatalogue(state.metrics),
    holdout: state.holdout,
    events: Object.fromEntries([...state.events].sort((a, b) => (a.type < b.type ? -1 : 1)).map((e) => [e.type, e])),
  };
}

const serialized = new WeakMap<object, string>();
function cachedJson(value: object): string {
  let json = serialized.get(value);
  if (json === undefined) {
    json = JSON.stringify(value);
    serialized.set(value, json);
  }
  return json;
}

/**
 * JSON.stringify(snapshot), reusing the serialized form of every route and experiment object
 * seen before. The stores hand out frozen objects and keep unchanged ones across loads, so after
 * one change only that experiment is serialized again.
 */
export function serializeSnapshot(s: ConfigSnapshot): string {
  const routes = Object.entries(s.routes)
    .map(([key, route]) => `${JSON.stringify(key)}:${cachedJson(route)}`)
    .join(',');
  const experiments = s.experiments.map(cachedJson).join(',');
  const epoch = s.epoch === undefined ? '' : `"epoch":${JSON.stringify(s.epoch)},`;
  return `{"version":${JSON.stringify(s.version)},${epoch}"routes":{${routes}},"experiments":[${experiments}],"metrics":${JSON.stringify(s.metrics)},"holdout":${JSON.stringify(s.holdout)},"events":${JSON.stringify(s.events)}}`;
}
