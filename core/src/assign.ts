import { PrefixHasher, utf8 } from './hash.ts';
import { hundredths, type ExperimentStatus, type Params, type TargetingRule } from './schemas.ts';
import { matchesTargeting, type Attributes } from './targeting.ts';

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

interface CompiledRelease {
  targeting: readonly TargetingRule[];
  params: Params;
  upstream?: string;
}

interface CompiledExperiment {
  key: string;
  targeting: readonly TargetingRule[];
  layerPrefix: Uint8Array;
  variantPrefix: Uint8Array;
  start: number;
  end: number;
  /** thresholds[i] = cumulative round(weight*100) of variants 0..i */
  thresholds: Int32Array;
  variants: readonly { key: string; params: Params; upstream?: string }[];
  overrides: ReadonlyMap<string, number>;
}

interface CompiledRoute {
  defaultParams: Params;
  released: CompiledRelease[];
  running: CompiledExperiment[];
}

export interface CompiledConfig {
  routes: Map<string, CompiledRoute>;
  holdout: { prefix: Uint8Array; threshold: number } | null;
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
      r = { defaultParams: config.routes[name]?.defaultParams ?? EMPTY, released: [], running: [] };
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
    routeFor(e.route).released.push({ targeting: e.targeting ?? [], params: variant.params ?? EMPTY, upstream: variant.upstream });
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
      targeting: e.targeting ?? [],
      layerPrefix: utf8(`layer:${e.layer ?? e.key}:`),
      variantPrefix: utf8(`${e.key}:${e.salt ?? ''}:`),
      start: e.allocation.start,
      end: e.allocation.end,
      thresholds,
      variants: e.variants.map((v) => ({ key: v.key, params: v.params ?? EMPTY, upstream: v.upstream })),
      overrides,
    });
  }

  const h = config.holdout;
  const holdout =
    h && h.percent > 0 ? { prefix: utf8(`holdout:${h.salt ?? ''}:`), threshold: Math.round(h.percent * 100) } : null;
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
  // 1. params starts as the route's defaultParams.
  const params: Params = { ...(r?.defaultParams ?? EMPTY) };
  let upstream: string | undefined;
  if (!r) return { assignments: [], params, holdout: false };

  // 2. Released experiments, ordered by (releasedAt, key): merge the released variant's params.
  for (const rel of r.released) {
    if (!matchesTargeting(rel.targeting, attributes)) continue;
    Object.assign(params, rel.params);
    if (rel.upstream) upstream = rel.upstream;
  }

  const unit = utf8(unitId);

  // 3. Holdout: a held-out unit gets no assignments.
  if (c.holdout && hasher.bucket(c.holdout.prefix, unit) < c.holdout.threshold) {
    return withUpstream({ assignments: [], params, holdout: true }, upstream);
  }

  // 4. Running experiments, ordered by key.
  const assignments: Assignment[] = [];
  for (const e of r.running) {
    if (!matchesTargeting(e.targeting, attributes)) continue;
    const layerBucket = hasher.bucket(e.layerPrefix, unit);
    if (layerBucket < e.start || layerBucket >= e.end) continue;
    const forcedIndex = e.overrides.get(unitId);
    const index = forcedIndex ?? pickVariant(e.thresholds, hasher.bucket(e.variantPrefix, unit));
    if (index < 0) continue;
    const variant = e.variants[index]!;
    Object.assign(params, variant.params);
    if (variant.upstream) upstream = variant.upstream;
    assignments.push({ experiment: e.key, variant: variant.key, forced: forcedIndex !== undefined });
  }
  return withUpstream({ assignments, params, holdout: false }, upstream);
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
