import { createError, type FieldIssue } from '@bunryu/core';

/** More issues than this in one body are summarised, not listed. */
const MAX_ISSUES = 20;

export type Instance = Record<string, unknown>;

/**
 * The body's `instances`: a non-empty array of objects whose every value is a finite number,
 * the features the chosen version does not read included (a `"price": "abc"` is the client's
 * mistake whichever version answers, and `1e999` parses to Infinity).
 */
export function readInstances(body: unknown): Instance[] {
  const instances = (body as { instances?: unknown } | null)?.instances;
  if (!Array.isArray(instances)) throw issues([{ path: 'instances', message: 'must be an array of {feature: number} objects' }]);
  if (instances.length === 0) throw issues([{ path: 'instances', message: 'must hold at least one instance' }]);
  const found: FieldIssue[] = [];
  for (let i = 0; i < instances.length && found.length < MAX_ISSUES; i++) {
    const x = instances[i];
    if (typeof x !== 'object' || x === null || Array.isArray(x)) {
      found.push({ path: `instances.${i}`, message: 'must be an object of feature values' });
      continue;
    }
    for (const [feature, v] of Object.entries(x as Record<string, unknown>)) {
      if (typeof v === 'number' && Number.isFinite(v)) continue;
      if (found.length < MAX_ISSUES) found.push({ path: `instances.${i}.${feature}`, message: 'must be a finite number' });
    }
  }
  if (found.length) throw issues(found);
  return instances as Instance[];
}

/**
 * The input tensor's data, row-major [instances, features]. Every feature the model reads must
 * be a finite number in every instance; other keys are ignored, so one request shape serves
 * versions that read different subsets of the features.
 */
export function featureMatrix(instances: readonly Instance[], features: readonly string[]): Float32Array {
  const width = features.length;
  const data = new Float32Array(instances.length * width);
  let found: FieldIssue[] | undefined;
  for (let i = 0; i < instances.length; i++) {
    const x = instances[i]!;
    for (let j = 0; j < width; j++) {
      const v = x[features[j]!];
      if (typeof v === 'number' && Number.isFinite(v)) {
        data[i * width + j] = v;
        continue;
      }
      found ??= [];
      if (found.length < MAX_ISSUES) found.push({ path: `instances.${i}.${features[j]}`, message: v === undefined ? 'is missing' : 'must be a finite number' });
    }
  }
  if (found) throw issues(found);
  return data;
}

/** Candidates one ranking request may hold. */
export const MAX_RANK_ITEMS = 1000;

/**
 * The body of a ranking request (`{"items": [{"id", "features": {…}}]}`): ids are non-empty
 * strings of at most 128 characters, each once; the features are checked as instances are.
 */
export function readRankItems(body: unknown): { id: string; features: Instance }[] {
  const items = (body as { items?: unknown } | null)?.items;
  if (!Array.isArray(items) || items.length === 0) throw issues([{ path: 'items', message: 'must be a non-empty array of {id, features} objects' }]);
  if (items.length > MAX_RANK_ITEMS) throw issues([{ path: 'items', message: `must hold at most ${MAX_RANK_ITEMS} items` }]);
  const found: FieldIssue[] = [];
  const seen = new Set<string>();
  items.forEach((it: unknown, i) => {
    const id = (it as { id?: unknown } | null)?.id;
    if (typeof id !== 'string' || id.length === 0 || id.length > 128) found.push({ path: `items.${i}.id`, message: 'must be a string of 1 to 128 characters' });
    else if (seen.has(id)) found.push({ path: `items.${i}.id`, message: `duplicate id "${id}"` });
    else seen.add(id);
  });
  if (found.length) throw issues(found.slice(0, MAX_ISSUES));
  try {
    readInstances({ instances: items.map((it: { features?: unknown }) => it.features) });
  } catch (err) {
    // The same checks, named at the item's features.
    const fields = ((err as { details?: { fields?: FieldIssue[] } }).details?.fields ?? []).map((f) => ({ ...f, path: f.path.replace(/^instances(\.\d+)?/, (_m, i: string | undefined) => `items${i ?? ''}.features`) }));
    throw fields.length ? issues(fields) : err;
  }
  return items as { id: string; features: Instance }[];
}

function issues(fields: FieldIssue[]) {
  return createError('BUNRYU_VALIDATION', `${fields[0]!.path}: ${fields[0]!.message}`, { fields });
}
