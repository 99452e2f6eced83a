import { BUCKETS, PrefixHasher, hashPrefix, type HashPrefix } from './hash.ts';
import { hundredths, type ExperimentStatus, type Params, type TargetingRule } from './schemas.ts';
import { compileTargeting, type Attributes, type CompiledTargeting } from './targeting.ts';

/** The part of a config snapshot that assignment reads (the test vectors use exactly this). */
export interface AssignableConfig {
  routes: Readonly<Record<string, { defaultParams?: Params }>>;
  experiments: readonly AssignableExperiment[];
  holdout?: { percent: number; salt?: string } | null;
}

export interface AssignableExperiment {
  key: string;
  route: string;
  layer?: string | null;
  salt?: string;
  status: ExperimentStatus;
  allocation: { start: number; end: number };
  targeting?: readonly TargetingRule[];
  variants: readonly { key: string; weight: number; params?: Params; upstream?: string }[];
  overrides?: Readonly<Record<string, string>>;
  releasedVariant?: string;
  releasedAt?: string;
}

export interface Assignment {
  experiment: string;
  variant: string;
  forced: boolean;
}

export interface AssignmentResult {
  assignments: Assignment[];
  params: Params;
  holdout: boolean;
  /** Set when a released or assigned variant overrides the route's upstream (last one wins). */
  upstream?: string;
}

/** A params object flattened once per snapshot: merging key by key is far cheaper than Object.assign per request. */
type Entries = readonly (readonly [string, unknown])[];

interface CompiledRelease {
  matches: CompiledTargeting;
  entries: Entries;
  upstream?: string;
}

interface CompiledExperiment {
  key: string;
  matches: CompiledTargeting;
  layerPrefix: HashPrefix;
  variantPrefix: HashPrefix;
  start: number;
  end: number;
  /** The allocation covers every bucket of its layer: no layer bucket can fall outside it. */
  wholeLayer: boolean;
  /** thresholds[i] = cumulative round(weight*100) of variants 0..i */
  thresholds: Int32Array;
  variants: readonly { key: string; entries: Entries; upstream?: string }[];
  overrides: ReadonlyMap<string, number>;
}

interface CompiledRoute {
  defaultEntries: Entries;
  released: CompiledRelease[];
  running: CompiledExperiment[];
}

export interface CompiledConfig {
  routes: Map<string, CompiledRoute>;
  holdout: { prefix: HashPrefix; threshold: number } | null;
}

const EMPTY: Params = Object.freeze({}) as Params;
const compiledCache = new WeakMap<AssignableConfig, CompiledConfig>();
const hasher = new PrefixHasher();

/**
 * Compiles a snapshot for assignment: sorts experiments, pre-encodes every hash prefix and
 * precomputes variant thresholds, so a request only encodes its unit id once.
 */
export function compileConfig(config: AssignableConfig): CompiledConfig {
  const routes = new Map<string, CompiledRoute>();
  const routeFor = (name: string): CompiledRoute => {
    let r = routes.get(name);
    if (!r) {
      r = { defaultEntries: Object.entries(config.routes[name]?.defaultParams ?? EMPTY), released: [], running: [] };
      routes.set(name, r);
    }
    return r;
  };
  for (const name of Object.keys(config.routes)) routeFor(name);

  const released = config.experiments
    .filter((e) => e.status === 'released' && e.releasedVariant !== undefined)
    .sort((a, b) => compare(a.releasedAt ?? '', b.releasedAt ?? '') || compare(a.key, b.key));
  for (const e of released) {
    const variant = e.variants.find((v) => v.key === e.releasedVariant);
    if (!variant) continue;
    routeFor(e.route).released.push({ matches: compileTargeting(e.targeting ?? []), entries: Object.entries(variant.params ?? EMPTY), upstream: variant.upstream });
  }

  const running = config.experiments.filter((e) => e.status === 'running').sort((a, b) => compare(a.key, b.key));
  for (const e of running) {
    const thresholds = new Int32Array(e.variants.length);
    let cumulative = 0;
    e.variants.forEach((v, i) => {
      cumulative += hundredths(v.weight);
      thresholds[i] = cumulative;
    });
    const index = new Map(e.variants.map((v, i) => [v.key, i] as const));
    const overrides = new Map<string, number>();
    for (const [unit, variant] of Object.entries(e.overrides ?? {})) {
      const i = index.get(variant);
      if (i !== undefined) overrides.set(unit, i);
    }
    routeFor(e.route).running.push({
      key: e.key,
      matches: compileTargeting(e.targeting ?? []),
      layerPrefix: hashPrefix(`layer:${e.layer ?? e.key}:`),
      variantPrefix: hashPrefix(`${e.key}:${e.salt ?? ''}:`),
      start: e.allocation.start,
      end: e.allocation.end,
      wholeLayer: e.allocation.start <= 0 && e.allocation.end >= BUCKETS,
      thresholds,
      variants: e.variants.map((v) => ({ key: v.key, entries: Object.entries(v.params ?? EMPTY), upstream: v.upstream })),
      overrides,
    });
  }

  const h = config.holdout;
  const holdout =
    h && h.percent > 0 ? { prefix: hashPrefix(`holdout:${h.salt ?? ''}:`), threshold: Math.round(h.percent * 100) } : null;
  return { routes, holdout };
}

function compiled(config: AssignableConfig): CompiledConfig {
  let c = compiledCache.get(config);
  if (!c) {
    c = compileConfig(config);
    compiledCache.set(config, c);
  }
  return c;
}

/**
 * Assigns a unit on a route (SPEC §3). Pure: the caller publishes exposures for the returned
 * non-forced assignments. Snapshots are compiled once and cached by identity, so treat a
 * snapshot as immutable once it has been assigned against.
 */
export function assign(
  config: AssignableConfig,
  route: string,
  unitId: string,
  attributes: Attributes = {},
): AssignmentResult {
  const c = compiled(config);
  const r = c.routes.get(route);
  // 1. params starts as the route's defaultParams. (Built key by key: spreading a shared object
  //    and then adding keys is an order of magnitude slower in V8.)
  const params: Params = {};
  let upstream: string | undefined;
  if (!r) return { assignments: [], params, holdout: false };
  mergeInto(params, r.defaultEntries);

  // 2. Released experiments, ordered by (releasedAt, key): merge the released variant's params.
  for (const rel of r.released) {
    if (!rel.matches(attributes)) continue;
    mergeInto(params, rel.entries);
    if (rel.upstream) upstream = rel.upstream;
  }

  hasher.setUnit(unitId);

  // 3. Holdout: a held-out unit gets no assignments.
  if (c.holdout && hasher.bucket(c.holdout.prefix) < c.holdout.threshold) {
    return withUpstream({ assignments: [], params, holdout: true }, upstream);
  }

  // 4. Running experiments, ordered by key.
  const assignments: Assignment[] = [];
  for (const e of r.running) {
    if (!e.matches(attributes)) continue;
    // An experiment alone in its layer usually holds all of it: then the layer hash decides nothing.
    if (!e.wholeLayer) {
      const layerBucket = hasher.bucket(e.layerPrefix);
      if (layerBucket < e.start || layerBucket >= e.end) continue;
    }
    const forcedIndex = e.overrides.get(unitId);
    const index = forcedIndex ?? pickVariant(e.thresholds, hasher.bucket(e.variantPrefix));
    if (index < 0) continue;
    const variant = e.variants[index]!;
    mergeInto(params, variant.entries);
    if (variant.upstream) upstream = variant.upstream;
    assignments.push({ experiment: e.key, variant: variant.key, forced: forcedIndex !== undefined });
  }
  return withUpstream({ assignments, params, holdout: false }, upstream);
}

function mergeInto(params: Params, entries: Entries): void {
  for (let i = 0; i < entries.length; i++) params[entries[i]![0]] = entries[i]![1];
}

/** The first variant whose cumulative round(weight*100) exceeds the bucket. */
function pickVariant(thresholds: Int32Array, b: number): number {
  for (let i = 0; i < thresholds.length; i++) if (b < thresholds[i]!) return i;
  return -1;
}

function withUpstream(result: AssignmentResult, upstream: string | undefined): AssignmentResult {
  if (upstream) result.upstream = upstream;
  return result;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
