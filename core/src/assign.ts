import { exposedAssignments, formatAssignmentsHeader } from './events.ts';
import { BUCKETS, PrefixHasher, hashPrefix, type HashPrefix } from './hash.ts';
import { hundredths, type Assignment, type ExperimentStatus, type Params, type TargetingRule } from './schemas.ts';
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

export interface AssignmentResult {
  assignments: Assignment[];
  params: Params;
  holdout: boolean;
  /** Set when a released or assigned variant overrides the route's upstream (last one wins). */
  upstream?: string;
}

/** What assignForwarding returns: the params as JSON text instead of an object. */
export interface ForwardingAssignment {
  assignments: Assignment[];
  /**
   * `JSON.stringify(params)` of the same assignment, with every character above U+007E written
   * as a `\uXXXX` escape: ASCII only, so it can travel in an HTTP header.
   */
  paramsJson: string;
  /** `formatAssignmentsHeader(assignments)`: the `x-ab-assignments` value. */
  assignmentsHeader: string;
  /**
   * The exposure's `assignments`: JSON of the non-forced assignments as `{experiment, variant}`
   * (what exposureEvent carries), or null when every assignment is forced and there is nothing to expose.
   */
  exposureAssignmentsJson: string | null;
  holdout: boolean;
  upstream?: string;
}

/** A params object flattened once per snapshot: merging key by key is far cheaper than Object.assign per request. */
type Entries = readonly (readonly [string, unknown])[];

/**
 * The params one source sets (the route's defaults, a released or an assigned variant), compiled
 * for both results: entries for the params object, and for the JSON text each entry's key slot
 * in its route and its `"key":value` member already serialized.
 */
interface ParamsSource {
  entries: Entries;
  slots: Int32Array;
  members: readonly string[];
}

interface CompiledRelease {
  matches: CompiledTargeting;
  params: ParamsSource;
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
  variants: readonly CompiledVariant[];
  overrides: ReadonlyMap<string, number>;
}

interface CompiledVariant {
  params: ParamsSource;
  upstream?: string;
  /** The assignment to this variant, by the hash and forced; frozen, as every request shares them. */
  hashed: Assignment;
  forced: Assignment;
  /** `exp=variant` in `x-ab-assignments`, and `{"experiment":…,"variant":…}` in an exposure. */
  headerPair: string;
  exposureJson: string;
}

interface CompiledRoute {
  defaults: ParamsSource;
  released: CompiledRelease[];
  running: CompiledExperiment[];
  /** The slot of every params key of the route. */
  slotOf: Map<string, number>;
  /**
   * Some key is an array index, which a JS object enumerates before every other key: the JSON
   * text is then made from the params object (the rare slow path).
   */
  indexKeys: boolean;
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
      r = { defaults: EMPTY_SOURCE, released: [], running: [], slotOf: new Map(), indexKeys: false };
      r.defaults = paramsSource(r, config.routes[name]?.defaultParams);
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
    const route = routeFor(e.route);
    route.released.push({ matches: compileTargeting(e.targeting ?? []), params: paramsSource(route, variant.params), upstream: variant.upstream });
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
    const route = routeFor(e.route);
    route.running.push({
      key: e.key,
      matches: compileTargeting(e.targeting ?? []),
      layerPrefix: hashPrefix(`layer:${e.layer ?? e.key}:`),
      variantPrefix: hashPrefix(`${e.key}:${e.salt ?? ''}:`),
      start: e.allocation.start,
      end: e.allocation.end,
      wholeLayer: e.allocation.start <= 0 && e.allocation.end >= BUCKETS,
      thresholds,
      variants: e.variants.map((v) => ({
        params: paramsSource(route, v.params),
        upstream: v.upstream,
        hashed: Object.freeze({ experiment: e.key, variant: v.key, forced: false }),
        forced: Object.freeze({ experiment: e.key, variant: v.key, forced: true }),
        headerPair: `${e.key}=${v.key}`,
        exposureJson: JSON.stringify({ experiment: e.key, variant: v.key }),
      })),
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

/** Receives the params sources of one assignment, in merge order (later sources win), and each variant assigned. */
interface ParamsSink {
  merge(source: ParamsSource): void;
  assigned?(variant: CompiledVariant, forced: boolean): void;
}

/**
 * Assigns a unit on a route (SPEC §3). Pure: the caller publishes exposures for the returned
 * non-forced assignments. Snapshots are compiled once and cached by identity, so treat a
 * snapshot as immutable once it has been assigned against. The Assignment objects are frozen
 * and shared by every call that assigns the same variant.
 */
export function assign(
  config: AssignableConfig,
  route: string,
  unitId: string,
  attributes: Attributes = {},
): AssignmentResult {
  // Built key by key: spreading a shared object and then adding keys is an order of magnitude slower in V8.
  const params: Params = {};
  const sink: ParamsSink = { merge: (source) => mergeInto(params, source.entries) };
  const c = compiled(config);
  const result = assignTo(c, c.routes.get(route), unitId, attributes, sink);
  return withUpstream<AssignmentResult>({ assignments: result.assignments, params, holdout: result.holdout }, result.upstream);
}

/**
 * `assign` for forwarding a request: the params come as ASCII-only JSON text (ForwardingAssignment),
 * built from members serialized once per snapshot instead of an object built and serialized on
 * every request.
 */
export function assignForwarding(
  config: AssignableConfig,
  route: string,
  unitId: string,
  attributes: Attributes = {},
): ForwardingAssignment {
  const c = compiled(config);
  const r = c.routes.get(route);
  if (r === undefined || r.indexKeys) {
    const { assignments, params, holdout, upstream } = assign(config, route, unitId, attributes);
    const exposed = exposedAssignments(assignments);
    return withUpstream<ForwardingAssignment>(
      {
        assignments,
        paramsJson: asciiJson(params),
        assignmentsHeader: formatAssignmentsHeader(assignments),
        exposureAssignmentsJson: exposed.length === 0 ? null : JSON.stringify(exposed),
        holdout,
      },
      upstream,
    );
  }
  jsonSink.begin(r);
  const { assignments, holdout, upstream } = assignTo(c, r, unitId, attributes, jsonSink);
  const paramsJson = jsonSink.end();
  return withUpstream<ForwardingAssignment>(
    { assignments, paramsJson, assignmentsHeader: jsonSink.header, exposureAssignmentsJson: jsonSink.exposure, holdout },
    upstream,
  );
}

interface Assigned {
  assignments: Assignment[];
  holdout: boolean;
  upstream: string | undefined;
}

/** The assignment both results share; `r` is the route compiled in `c`, undefined for a route it does not know. */
function assignTo(c: CompiledConfig, r: CompiledRoute | undefined, unitId: string, attributes: Attributes, sink: ParamsSink): Assigned {
  let upstream: string | undefined;
  if (!r) return { assignments: [], holdout: false, upstream };
  // 1. params starts as the route's defaultParams.
  sink.merge(r.defaults);

  // 2. Released experiments, ordered by (releasedAt, key): merge the released variant's params.
  for (const rel of r.released) {
    if (!rel.matches(attributes)) continue;
    sink.merge(rel.params);
    if (rel.upstream) upstream = rel.upstream;
  }

  hasher.setUnit(unitId);

  // 3. Holdout: a held-out unit gets no assignments.
  if (c.holdout && hasher.bucket(c.holdout.prefix) < c.holdout.threshold) return { assignments: [], holdout: true, upstream };

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
    sink.merge(variant.params);
    sink.assigned?.(variant, forcedIndex !== undefined);
    if (variant.upstream) upstream = variant.upstream;
    assignments.push(forcedIndex === undefined ? variant.hashed : variant.forced);
  }
  return { assignments, holdout: false, upstream };
}

function mergeInto(params: Params, entries: Entries): void {
  for (let i = 0; i < entries.length; i++) params[entries[i]![0]] = entries[i]![1];
}

/**
 * Builds the JSON text of one assignment's params from members serialized once per snapshot. A
 * key keeps the place where it was first set and takes the value set last, as in the object
 * `assign` builds, so the text is the same as JSON.stringify of that object. One instance
 * serves every call: assignment is synchronous.
 */
class JsonParamsSink implements ParamsSink {
  /** By slot: the `"key":value` member last set for that key in this call. */
  private members: (string | undefined)[] = [];
  /** Slots in the order their key was first set. */
  private readonly order: number[] = [];

  /** After end(): the call's `x-ab-assignments` value and its exposure's assignments (null: none). */
  header = '';
  exposure: string | null = null;

  begin(route: CompiledRoute): void {
    this.clear(); // what a call that threw half way left behind
    if (this.members.length < route.slotOf.size) this.members = new Array<string | undefined>(route.slotOf.size);
    this.header = '';
    this.exposure = null;
  }

  assigned(variant: CompiledVariant, forced: boolean): void {
    this.header = this.header === '' ? variant.headerPair : this.header + ',' + variant.headerPair;
    if (!forced) this.exposure = this.exposure === null ? '[' + variant.exposureJson : this.exposure + ',' + variant.exposureJson;
  }

  merge(source: ParamsSource): void {
    const { slots, members } = source;
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i]!;
      if (this.members[slot] === undefined) this.order.push(slot);
      this.members[slot] = members[i];
    }
  }

  end(): string {
    let out = '{';
    for (let i = 0; i < this.order.length; i++) out += (i === 0 ? '' : ',') + this.members[this.order[i]!];
    this.clear();
    if (this.exposure !== null) this.exposure += ']';
    return out + '}';
  }

  private clear(): void {
    for (let i = 0; i < this.order.length; i++) this.members[this.order[i]!] = undefined;
    this.order.length = 0;
  }
}

const jsonSink = new JsonParamsSink();
const EMPTY_SOURCE: ParamsSource = { entries: [], slots: new Int32Array(0), members: [] };
/** A canonical array index: V8 enumerates such keys first, in numeric order, whatever the insertion order. */
const ARRAY_INDEX = /^(?:0|[1-9]\d{0,9})$/;

function paramsSource(route: CompiledRoute, params: Params | undefined): ParamsSource {
  const entries = Object.entries(params ?? EMPTY);
  const slots = new Int32Array(entries.length);
  entries.forEach(([key], i) => {
    let slot = route.slotOf.get(key);
    if (slot === undefined) {
      slot = route.slotOf.size;
      route.slotOf.set(key, slot);
      if (ARRAY_INDEX.test(key) && Number(key) < 2 ** 32 - 1) route.indexKeys = true;
    }
    slots[i] = slot;
  });
  return { entries, slots, members: entries.map(([key, value]) => asciiJson(key) + ':' + asciiJson(value)) };
}

const NON_ASCII = /[\u007f-\uffff]/g;

/** JSON text with every character above U+007E escaped: the same value, in ASCII (what a header may carry). */
export function asciiJson(value: unknown): string {
  const json = JSON.stringify(value) ?? 'null';
  return json.replace(NON_ASCII, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

/** The first variant whose cumulative round(weight*100) exceeds the bucket. */
function pickVariant(thresholds: Int32Array, b: number): number {
  for (let i = 0; i < thresholds.length; i++) if (b < thresholds[i]!) return i;
  return -1;
}

function withUpstream<R extends { upstream?: string }>(result: R, upstream: string | undefined): R {
  if (upstream) result.upstream = upstream;
  return result;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
