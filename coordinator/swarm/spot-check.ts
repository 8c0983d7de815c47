// Spot checks: one train batch computed by several workers and compared by relative L2 distance, with a tolerance
// for the honest differences between GPUs. The run (./run.ts) decides which batches are checked (a sampled share,
// every lease of a worker on probation), hands out the copies (never to a worker that holds one, preferably to
// workers with a good record from another network) and applies the verdict; this file decides the verdict.
//
// The results fall into groups that agree. Colluding twins that compute the same wrong gradient agree with each
// other, so a group of two proves little unless one of its workers has a good record (passed checks, no strikes):
//   a pair and no dissent: passed, unless it is to be confirmed by a third copy (a share of the passes, and a pair
//     of which neither worker has a record, as at a run's start, while another worker is around to compute one);
//   one against one: a third opinion;
//   a pair against a dissenter: the pair wins and the dissenter is struck if the pair has a good record; else a
//     fourth opinion (with no other worker around: the pair's gradient, nobody blamed);
//   three or more against the rest: they win, the rest are struck;
//   two pairs: the pair with a good record wins if only one has one (a confirmation that caught twins); if neither
//     has one (as at a run's start, when nobody has a record yet), a fifth copy decides by majority; else, or with
//     no fifth to be had, the coordinate-wise median, nobody blamed; so too when no two agree.
// At most 4 copies, 5 only to break a tie of two pairs without a record; `final` (no other worker can compute one)
// settles on what is there.
import { relDistance } from './robust.ts';

export interface CheckResult {
  workerId: string;
  /** the per-batch gradient */
  grads: Float32Array;
  loss: number;
  computeMs: number;
  /** its per-batch norm (for the norm screen's history once applied) */
  norm: number;
}

export interface SpotCheck {
  /** results wanted before deciding: 2, then 3 after a disagreement or for a confirmation, 4 if that is disputed, 5 to
   * break a tie of two pairs without a record */
  need: number;
  results: CheckResult[];
  /** workers that hold or held a copy of this batch (a batch is never checked by the worker it checks) */
  holders: Set<string>;
  /** the third copy was asked to confirm a passed pair */
  confirming: boolean;
  /** why the batch is checked: a sampled share of the step, or the lease of a worker on probation */
  why: 'sample' | 'probation';
}

export type Verdict =
  /** fewer results than needed */
  | { kind: 'wait' }
  /** one more copy wanted (`confirming`: a pair agreed and is being tested) */
  | { kind: 'more'; confirming: boolean }
  /** results[honest[0]] is the batch's gradient; `honest` agreed with it, `liars` were outvoted */
  | { kind: 'agreed'; honest: number[]; liars: number[] }
  /** no majority: the coordinate-wise median of all results, nobody blamed */
  | { kind: 'split' };

/** the most copies of one batch, and the one more that breaks a tie of two pairs without a record */
export const MAX_COPIES = 4;
export const TIE_BREAK_COPIES = 5;

export interface JudgeOptions {
  /** relative L2 distance under which two results agree */
  tol: number;
  /** whether this worker has a good record (passed checks, off probation, no strikes) */
  good: (workerId: string) => boolean;
  /** whether a pair that agrees with no dissent gets a third copy (asked once per check) */
  confirm: (pair: string[]) => boolean;
  /** no other worker can compute a copy: settle on what is there */
  final?: boolean;
}

export function newCheck(why: SpotCheck['why'], holder?: string): SpotCheck {
  return { need: 2, results: [], holders: new Set(holder === undefined ? [] : [holder]), confirming: false, why };
}

/** the verdict on a check's results so far */
export function judge(c: SpotCheck, o: JudgeOptions): Verdict {
  const r = c.results;
  const n = r.length;
  const final = o.final || n >= MAX_COPIES;
  if (n < c.need && !o.final) return { kind: 'wait' };
  if (n === 1) return { kind: 'agreed', honest: [0], liars: [] };
  // groups of results that agree with the group's first
  const groups: number[][] = [];
  for (let i = 0; i < n; i++) {
    const g = groups.find((x) => relDistance(r[x[0]].grads, r[i].grads) <= o.tol);
    if (g) g.push(i);
    else groups.push([i]);
  }
  groups.sort((a, b) => b.length - a.length);
  const [top, next] = groups;
  const others = (g: number[]) => r.map((_, k) => k).filter((k) => !g.includes(k));
  const good = (g: number[]) => g.some((k) => o.good(r[k].workerId));
  const more = (confirming: boolean): Verdict => ({ kind: 'more', confirming });
  if (top.length >= 3) return { kind: 'agreed', honest: top, liars: others(top) };
  if (top.length === 2 && !next) {
    if (!final && !c.confirming && o.confirm(top.map((k) => r[k].workerId))) return more(true);
    return { kind: 'agreed', honest: top, liars: [] };
  }
  if (top.length === 2 && next.length === 2) {
    if (good(top) !== good(next)) {
      const [win, lose] = good(top) ? [top, next] : [next, top];
      return { kind: 'agreed', honest: win, liars: lose };
    }
    const tie = !good(top) && !o.final && n < TIE_BREAK_COPIES;
    return tie ? more(false) : { kind: 'split' };
  }
  if (top.length === 2) {
    // a pair against one or two dissenters
    if (good(top)) return { kind: 'agreed', honest: top, liars: others(top) };
    return final ? { kind: 'agreed', honest: top, liars: [] } : more(false);
  }
  // no two agree
  return !final && n === 2 ? more(false) : { kind: 'split' };
}
