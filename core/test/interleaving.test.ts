import { describe, expect, it } from 'vitest';
import { interleave, murmur3, preference, sequentialSignPValue, signTest, teamDraft, type Interleaved } from '../src/index.ts';

/**
 * The reference, written from the paper's pseudo-code (Radlinski, Kurup and Joachims, CIKM 2008,
 * Algorithm 2, "Team-Draft Interleaving"), kept as literal as possible:
 *
 *   Init: I ← (); TeamA ← ∅; TeamB ← ∅
 *   while (∃i: A[i] ∉ I) ∧ (∃j: B[j] ∉ I) do
 *     if (|TeamA| < |TeamB|) ∨ ((|TeamA| = |TeamB|) ∧ (RandBit() = 1)) then
 *       k ← min_i {i : A[i] ∉ I}; I ← I + A[k]; TeamA ← TeamA ∪ {A[k]}
 *     else
 *       k ← min_i {i : B[i] ∉ I}; I ← I + B[k]; TeamB ← TeamB ∪ {B[k]}
 *   Output: I, TeamA, TeamB
 *
 * plus the cut at `length` items a gateway answering a page needs.
 */
function reference(A: string[], B: string[], randBit: () => number, length = Infinity): Interleaved {
  const I: string[] = [];
  const teamA = new Set<string>();
  const teamB = new Set<string>();
  while (A.some((x) => !I.includes(x)) && B.some((x) => !I.includes(x)) && I.length < length) {
    if (teamA.size < teamB.size || (teamA.size === teamB.size && randBit() === 1)) {
      const k = A.findIndex((x) => !I.includes(x));
      I.push(A[k]!);
      teamA.add(A[k]!);
    } else {
      const k = B.findIndex((x) => !I.includes(x));
      I.push(B[k]!);
      teamB.add(B[k]!);
    }
  }
  return { items: I, teams: I.map((x) => (teamA.has(x) ? 'a' : 'b')) };
}

/** A fixed sequence of coins (1 = A picks first), as the vectors state them. */
const coins = (bits: number[]) => {
  let k = 0;
  return () => bits[k++ % bits.length]!;
};

/** Worked by hand from the pseudo-code above. */
const VECTORS: { name: string; a: string[]; b: string[]; bits: number[]; length?: number; items: string[]; teams: string }[] = [
  // A ranking with nothing left to add ends the list: the last item of the other is not shown.
  { name: 'disjoint lists, A wins every toss', a: ['a1', 'a2', 'a3'], b: ['b1', 'b2', 'b3'], bits: [1], items: ['a1', 'b1', 'a2', 'b2', 'a3'], teams: 'ababa' },
  { name: 'disjoint lists, B wins every toss', a: ['a1', 'a2'], b: ['b1', 'b2'], bits: [0], items: ['b1', 'a1', 'b2'], teams: 'bab' },
  { name: 'the same top item: whoever picks it, the other takes its next', a: ['x', 'a2', 'a3'], b: ['x', 'b2', 'b3'], bits: [1, 0, 1], items: ['x', 'b2', 'b3'], teams: 'abb' },
  { name: 'shared items deeper down are skipped by the one who did not pick them', a: ['p', 'q', 'r', 's'], b: ['q', 'p', 't', 'r'], bits: [0, 0], items: ['q', 'p', 't', 'r'], teams: 'baba' },
  { name: 'a duplicate inside one ranking counts once', a: ['d', 'd', 'e'], b: ['f', 'g', 'h'], bits: [1, 1], items: ['d', 'f', 'e'], teams: 'aba' },
  { name: 'a shorter ranking ends the list once it has nothing left to add', a: ['a1'], b: ['b1', 'b2', 'b3'], bits: [0], items: ['b1', 'a1'], teams: 'ba' },
  { name: 'an empty ranking gives an empty list', a: [], b: ['b1', 'b2'], bits: [1], items: [], teams: '' },
  { name: 'cut at the requested length', a: ['a1', 'a2', 'a3'], b: ['b1', 'b2', 'b3'], bits: [1, 0], length: 3, items: ['a1', 'b1', 'b2'], teams: 'abb' },
];

describe('team-draft interleaving', () => {
  it.each(VECTORS)('$name', ({ a, b, bits, length, items, teams }) => {
    const want = { items, teams: [...teams] };
    expect(reference(a, b, coins(bits), length)).toEqual(want);
    const coin = coins(bits);
    expect(teamDraft(a, b, () => coin() === 1, length)).toEqual(want);
  });

  it('equals the reference on seeded random rankings with overlaps and duplicates, coin for coin', () => {
    let seed = 7;
    const rnd = () => ((seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0) / 2 ** 32);
    for (let n = 0; n < 2000; n++) {
      const pool = 3 + Math.floor(rnd() * 12);
      const list = () => Array.from({ length: Math.floor(rnd() * 10) }, () => `i${Math.floor(rnd() * pool)}`);
      const [a, b] = [list(), list()];
      const bits = Array.from({ length: 20 }, () => (rnd() < 0.5 ? 1 : 0));
      const length = rnd() < 0.3 ? 1 + Math.floor(rnd() * 6) : Infinity;
      const coin = coins(bits);
      const got = teamDraft(a, b, () => coin() === 1, length);
      expect(got, JSON.stringify({ a, b, bits, length })).toEqual(reference(a, b, coins(bits), length));
      // Every item once; each team's items in its ranking's order; picks never more than one apart.
      expect(new Set(got.items).size).toBe(got.items.length);
      for (const [team, list] of [['a', a], ['b', b]] as const) {
        const mine = got.items.filter((_, i) => got.teams[i] === team);
        expect(mine).toEqual([...new Set(list)].filter((x) => mine.includes(x)));
      }
      const diff = got.teams.filter((t) => t === 'a').length - got.teams.filter((t) => t === 'b').length;
      expect(Math.abs(diff)).toBeLessThanOrEqual(1);
    }
  });

  it('is seeded by the request id: the same id merges the same way anywhere, coins from MurmurHash3', () => {
    const a = ['a1', 'a2', 'a3', 'a4'];
    const b = ['b1', 'b2', 'b3', 'b4'];
    const id = 'req-42';
    let k = 0;
    const want = reference(a, b, () => murmur3(`${id}:${k++}`) & 1);
    expect(interleave(a, b, id)).toEqual(want);
    expect(interleave(a, b, id)).toEqual(interleave([...a], [...b], id));
    // Over many requests A picks first half the time: neither ranking is favoured by position.
    let first = 0;
    for (let r = 0; r < 4000; r++) if (interleave(a, b, `r${r}`).teams[0] === 'a') first++;
    expect(first / 4000).toBeGreaterThan(0.47);
    expect(first / 4000).toBeLessThan(0.53);
  });

  it('credits a unit to the ranking whose items drew more clicks', () => {
    expect([preference(2, 1), preference(0, 3), preference(1, 1)]).toEqual(['win', 'loss', 'tie']);
  });
});

/** P(X ≤ k), X ~ Binomial(n, ½), summed term by term (independent of the incomplete beta). */
function binomialCdf(k: number, n: number): number {
  let term = Math.pow(0.5, n);
  let sum = term;
  for (let i = 1; i <= k; i++) {
    term = (term * (n - i + 1)) / i;
    sum += term;
  }
  return sum;
}

describe('the sign test of wins against losses', () => {
  it('equals the exact binomial tail, summed term by term', () => {
    for (const [w, l] of [[0, 0], [1, 0], [5, 5], [12, 3], [3, 12], [40, 60], [120, 80], [7, 0], [0, 20]] as const) {
      const n = w + l;
      const want = n === 0 ? 1 : Math.min(1, 2 * binomialCdf(Math.min(w, l), n));
      expect(signTest(w, l)).toBeCloseTo(want, 12);
    }
  });

  /**
   * Seeded A/A and A/B runs of units that each prefer one ranking (ties dropped), looked at after
   * every unit up to 2,000: the running minimum of the sequential p-value stays below 5% in at
   * most 5% of A/A runs, and finds a 60/40 preference in nearly every run.
   */
  it('has an always-valid version: A/A false positives ≤ 5% at every look, and power against 60/40', () => {
    let seed = 11;
    const rnd = () => ((seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0) / 2 ** 32);
    const run = (pWin: number) => {
      let [w, l, min] = [0, 0, 1];
      for (let n = 0; n < 2000; n++) {
        if (rnd() < pWin) w++;
        else l++;
        min = Math.min(min, sequentialSignPValue(w, l));
        if (min < 0.05) return n + 1;
      }
      return Infinity;
    };
    const runs = 500;
    const aa = Array.from({ length: runs }, () => run(0.5));
    const ab = Array.from({ length: runs }, () => run(0.6));
    expect(aa.filter(Number.isFinite).length / runs).toBeLessThanOrEqual(0.05);
    expect(ab.filter(Number.isFinite).length / runs).toBeGreaterThan(0.95);
    // The fixed-horizon test, peeked at after every unit, would not hold its level.
    let peeking = 0;
    for (let r = 0; r < 200; r++) {
      let [w, l] = [0, 0];
      for (let n = 0; n < 500; n++) {
        if (rnd() < 0.5) w++;
        else l++;
        if (n >= 10 && signTest(w, l) < 0.05) {
          peeking++;
          break;
        }
      }
    }
    expect(peeking / 200).toBeGreaterThan(0.1);
  });
});
