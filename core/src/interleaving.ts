import { murmur3 } from './hash.ts';

/** Which ranking contributed an item of an interleaved list. */
export type Team = 'a' | 'b';

export interface Interleaved {
  /** The merged list, each id once. */
  items: string[];
  /** `teams[i]` contributed `items[i]`: the ranking a click on it is credited to. */
  teams: Team[];
}

/**
 * Team-draft interleaving (Radlinski, Kurup and Joachims, "How does clickthrough data reflect
 * retrieval quality?", CIKM 2008). Like captains picking teams, the ranking with fewer picks so
 * far adds its highest-ranked item not yet in the list; on a tie a coin decides who picks first.
 * It stops when either ranking has nothing left to add (the paper's rule: a ranking that ran out
 * would otherwise hand every remaining pick, and its credit, to the other) or at `length` items.
 * An id already in the list, from either ranking, is skipped.
 */
export function teamDraft(a: readonly string[], b: readonly string[], coin: () => boolean, length = Infinity): Interleaved {
  const out: Interleaved = { items: [], teams: [] };
  const taken = new Set<string>();
  const picks = { a: 0, b: 0 };
  let [ia, ib] = [0, 0];
  const next = (list: readonly string[], i: number) => {
    while (i < list.length && taken.has(list[i]!)) i++;
    return i;
  };
  for (;;) {
    ia = next(a, ia);
    ib = next(b, ib);
    if (ia >= a.length || ib >= b.length || out.items.length >= length) return out;
    const team: Team = picks.a < picks.b || (picks.a === picks.b && coin()) ? 'a' : 'b';
    const item = team === 'a' ? a[ia]! : b[ib]!;
    taken.add(item);
    out.items.push(item);
    out.teams.push(team);
    picks[team]++;
  }
}

/**
 * Team-draft interleaving seeded by the request id (SPEC §13), so that a request's merged list can
 * be recomputed anywhere: the k-th coin is the low bit of MurmurHash3 of `${requestId}:${k}`.
 */
export function interleave(a: readonly string[], b: readonly string[], requestId: string, length = Infinity): Interleaved {
  let k = 0;
  return teamDraft(a, b, () => (murmur3(`${requestId}:${k++}`) & 1) === 1, length);
}

/** Per unit: a win for `a` when its items drew more credited clicks than `b`'s, a loss when fewer. */
export function preference(clicksA: number, clicksB: number): 'win' | 'loss' | 'tie' {
  return clicksA > clicksB ? 'win' : clicksA < clicksB ? 'loss' : 'tie';
}
