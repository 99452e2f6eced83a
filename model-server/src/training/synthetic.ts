/**
 * The synthetic click world of the demo: what a user sees (the features) and the TRUE chance
 * that they click. The demo models are trained on samples of it, and the demo traffic simulator
 * (scripts/) draws its users' clicks from `trueClickProbability`, so a model that ranks closer
 * to the truth earns a truly higher click-through rate. Pure and deterministic for a seed.
 */

/** Every feature of the world, in the order models and clients use. */
export const features = ['user_affinity', 'item_popularity', 'recency', 'price', 'position'] as const;
export type Feature = (typeof features)[number];
export type Instance = Record<Feature, number>;

export const featureDescriptions: Record<Feature, string> = {
  user_affinity: "the user's affinity with the item's category, standard normal",
  item_popularity: "the item's popularity, 0..1",
  recency: 'days since the item was published, 0..60',
  price: 'price in currency units, log-normal around 20',
  position: 'slot in the list shown, 1..10',
};

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function createRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal by Box-Muller, from a uniform source. */
export function normal(rng: () => number): number {
  const u = 1 - rng(); // (0, 1]: log(0) is never taken
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** One impression as a user would meet it. */
export function sampleInstance(rng: () => number): Instance {
  const user_affinity = normal(rng);
  const item_popularity = rng();
  const recency = Math.min(60, -7 * Math.log(1 - rng()));
  const price = Math.exp(Math.log(20) + 0.7 * normal(rng));
  const position = 1 + Math.floor(rng() * 10);
  return { user_affinity, item_popularity, recency, price, position };
}

/**
 * The true click probability. It is not linear in the raw features (log price, an
 * affinity × popularity interaction), so no logistic regression reaches it exactly, but one that
 * sees every feature comes much closer than one that sees only popularity and position.
 */
export function trueClickProbability(x: Instance): number {
  const logit =
    -1.9 +
    1.0 * x.user_affinity +
    1.4 * x.item_popularity +
    0.6 * x.user_affinity * x.item_popularity -
    0.05 * x.recency -
    0.5 * Math.log(x.price / 20) -
    0.2 * (x.position - 1);
  return 1 / (1 + Math.exp(-logit));
}

export interface Dataset {
  rows: Instance[];
  /** 1 for a click, 0 otherwise. */
  labels: Uint8Array;
  /** The true click probability of each row (what an oracle model would predict). */
  truth: Float64Array;
}

export function generateDataset(size: number, seed: number): Dataset {
  const rng = createRng(seed);
  const rows: Instance[] = new Array(size);
  const labels = new Uint8Array(size);
  const truth = new Float64Array(size);
  for (let i = 0; i < size; i++) {
    const x = sampleInstance(rng);
    const p = trueClickProbability(x);
    rows[i] = x;
    truth[i] = p;
    labels[i] = rng() < p ? 1 : 0;
  }
  return { rows, labels, truth };
}
