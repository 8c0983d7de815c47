// The spot-check verdicts (coordinator/swarm/spot-check.ts judge), case by case: which results agree, who has a good
// record, and whether another copy can still be had decide between passing, asking once more, striking and a median.
import { describe, expect, it } from 'vitest';
import { judge, newCheck, type CheckResult, type JudgeOptions } from '../../coordinator/swarm/spot-check.ts';
import { Rng, freshSeed } from '../../shared/rng.ts';

const seed = freshSeed();
const rng = new Rng(seed);
const n = 257;
/** three gradients far apart (relative distance ~1.4, far over the tolerance) */
const A = Float32Array.from({ length: n }, () => rng.normal());
const B = Float32Array.from(A, (v) => -v);
const C = Float32Array.from({ length: n }, () => rng.normal());

/** a check with results from workers w0, w1, … holding these gradients */
function check(...gs: Float32Array[]) {
  const c = newCheck('sample');
  c.results = gs.map((g, i): CheckResult => ({ workerId: `w${i}`, grads: g, loss: 2, computeMs: 1, norm: 1 }));
  c.need = gs.length;
  return c;
}
const opts = (good: string[] = [], o: Partial<JudgeOptions> = {}): JudgeOptions => ({ tol: 1e-3, good: (w) => good.includes(w), confirm: () => false, ...o });

describe(`spot-check verdicts (seed ${seed})`, () => {
  it('a pair without a record and two dissenters that disagree with each other: settled on the pair at 4 copies, nobody struck', () => {
    expect(judge(check(A, A, B, C), opts())).toEqual({ kind: 'agreed', honest: [0, 1], liars: [] });
  });

  it('two pairs without a record: a fifth copy breaks the tie; it decides by majority, strikes the minority', () => {
    expect(judge(check(A, A, B, B), opts())).toEqual({ kind: 'more', confirming: false });
    expect(judge(check(A, A, B, B, B), opts())).toEqual({ kind: 'agreed', honest: [2, 3, 4], liars: [0, 1] });
    // a fifth that sides with neither: the median, nobody blamed
    expect(judge(check(A, A, B, B, C), opts())).toEqual({ kind: 'split' });
    // no fifth to be had
    expect(judge(check(A, A, B, B), opts([], { final: true }))).toEqual({ kind: 'split' });
  });

  it('two pairs that both have a good record (honest GPUs apart by more than the tolerance): the median, no fifth copy, nobody struck', () => {
    expect(judge(check(A, A, B, B), opts(['w0', 'w2']))).toEqual({ kind: 'split' });
  });

  it('two pairs, one with a good record: it wins and the other pair is struck', () => {
    expect(judge(check(A, A, B, B), opts(['w3']))).toEqual({ kind: 'agreed', honest: [2, 3], liars: [0, 1] });
  });

  it('a pair that agrees is passed, or confirmed by a third copy when asked; one against one asks a third', () => {
    expect(judge(check(A, A), opts())).toEqual({ kind: 'agreed', honest: [0, 1], liars: [] });
    expect(judge(check(A, A), opts([], { confirm: () => true }))).toEqual({ kind: 'more', confirming: true });
    expect(judge(check(A, B), opts())).toEqual({ kind: 'more', confirming: false });
  });
});
