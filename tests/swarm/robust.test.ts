// Defences in the run engine, without sockets: the robust aggregators against brute force and against a
// minority of huge vectors; norm screening with strikes and a ban; spot checks that catch a lying volunteer with a
// third opinion and apply each batch once with an honest gradient; a spot check with nobody to compare skipped.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { centeredClip, coordinateMedian, NormScreen, relDistance, sumOfSquares, trimmedMean } from '../../coordinator/swarm/robust.ts';
import { SwarmRun } from '../../coordinator/swarm/run.ts';
import { encodeCorpus } from '../../shared/data/dataset.ts';
import type { Lease, Refusal, Submission } from '../../shared/protocol.ts';
import { Rng, freshSeed } from '../../shared/rng.ts';
import type { RunConfig } from '../../shared/train/run-config.ts';
import { smallCorpus, tinyRun } from './helpers.ts';

const seed = freshSeed();
const rng = new Rng(seed);

function honest(i: number, n: number): Float32Array {
  const r = new Rng((seed ^ Math.imul(i + 7, 0x9e3779b1)) >>> 0);
  return Float32Array.from({ length: n }, () => 0.05 + r.normal() * 0.01);
}

function makeRun(c: RunConfig): SwarmRun {
  const { tokenizer, dataset } = encodeCorpus(readFileSync(smallCorpus(), 'utf8'));
  const run = new SwarmRun('t', 't', c, tokenizer, dataset);
  run.on('error', () => {});
  return run;
}

const take = (run: SwarmRun, w: string): Lease => {
  const r = run.lease(w);
  if (!r.ok || !('lease' in r)) throw new Error(`no lease for ${w}: ${JSON.stringify(r)}`);
  return r.lease;
};
const answer = (l: Lease, g: Float32Array): Submission => ({ runId: l.runId, leaseId: l.leaseId, version: l.version, loss: 2, grads: g as Float32Array<ArrayBuffer> });

describe(`robust aggregation (seed ${seed})`, () => {
  it('trimmed mean and the coordinate median agree with brute force; CenteredClip and the trimmed mean shrug off 2 of 10 attackers', () => {
    const n = 37;
    const parts = Array.from({ length: 7 }, () => rng.floats(n));
    const tm = new Float32Array(n);
    trimmedMean(parts, 0.2, tm); // cut 1 of 7 at each end
    const med = new Float32Array(n);
    coordinateMedian(parts, med);
    for (let i = 0; i < n; i++) {
      const col = parts.map((p) => p[i]).sort((a, b) => a - b);
      expect(tm[i]).toBeCloseTo(col.slice(1, 6).reduce((a, b) => a + b, 0) / 5, 5);
      expect(med[i]).toBe(col[3]);
    }
    const N = 501;
    const good = Array.from({ length: 8 }, (_, i) => honest(i, N));
    const truth = new Float32Array(N);
    for (const g of good) for (let i = 0; i < N; i++) truth[i] += g[i] / good.length;
    const norm = Math.sqrt(truth.reduce((a, x) => a + x * x, 0));
    const dir = rng.floats(N);
    const dn = Math.sqrt(dir.reduce((a, x) => a + x * x, 0));
    const attack = [Float32Array.from(good[0], (x) => -1000 * x), Float32Array.from(dir, (x) => (1000 * norm * x) / dn)];
    const all = [...good, ...attack];
    const mean = new Float32Array(N);
    for (const g of all) for (let i = 0; i < N; i++) mean[i] += g[i] / all.length;
    const cc = new Float32Array(N);
    const start = new Float32Array(N);
    coordinateMedian(all, start);
    centeredClip(all, start, 0, 3, cc);
    const t2 = new Float32Array(N);
    trimmedMean(all, 0.2, t2);
    const off = (x: Float32Array) => Math.sqrt(x.reduce((a, v, i) => a + (v - truth[i]) ** 2, 0)) / norm;
    expect(off(mean)).toBeGreaterThan(10); // the plain mean is ruined
    expect(off(cc)).toBeLessThan(0.2);
    expect(off(t2)).toBeLessThan(0.2);
  });

  it('norm screening refuses a 1000× gradient; the honest answer for its batch strikes the sender; bans at ban_after', () => {
    const run = makeRun(tinyRun({ swarm: { target_batch_size: 40, norm_screen: 10, ban_after: 2 } }));
    const n = run.layout.size;
    run.join({ workerId: 'h', kind: 'sim' });
    run.join({ workerId: 'x', kind: 'sim' });
    for (let i = 0; i < 4; i++) {
      const l = take(run, 'h');
      expect(run.submit('h', answer(l, honest(l.batches[0], n))).ok).toBe(true);
    }
    const bad = take(run, 'x');
    const r = run.submit('x', answer(bad, Float32Array.from(honest(0, n), (v) => v * 1000))) as Refusal;
    expect(r.code).toBe('outlier');
    expect(r.reason).toMatch(/over 10× the median/);
    expect(run.workers.get('x')!.strikes).toBe(0); // not yet: an honest spike looks the same
    const next = take(run, 'x');
    expect(next.batches).not.toEqual(bad.batches); // its refused batch is not handed straight back to it
    expect(run.submit('x', answer(next, honest(next.batches[0], n))).ok).toBe(true);
    const again = take(run, 'h');
    expect(again.batches).toEqual(bad.batches);
    expect(run.submit('h', answer(again, honest(again.batches[0], n))).ok).toBe(true);
    expect(run.workers.get('x')!.strikes).toBe(1); // the batch's honest gradient is normal: x lied
    const bad2 = take(run, 'x');
    const g = honest(1, n);
    g[3] = NaN;
    expect((run.submit('x', answer(bad2, g)) as Refusal).code).toBe('non-finite');
    expect(run.workers.get('x')!.banned).toMatch(/2 strikes, the last: non-finite/);
    expect(run.lease('x')).toMatchObject({ ok: false, code: 'banned' });
    run.dispose();
  });

  it('an honest spike (the same large gradient twice for one batch) is taken clipped, not refused for ever: no stall, no strike', () => {
    const run = makeRun(tinyRun({ swarm: { target_batch_size: 28, norm_screen: 10, ban_after: 1 } }));
    const n = run.layout.size;
    run.join({ workerId: 'solo', kind: 'sim' });
    for (let i = 0; i < 6; i++) {
      const l = take(run, 'solo');
      expect(run.submit('solo', answer(l, honest(l.batches[0], n))).ok).toBe(true);
    }
    const l = take(run, 'solo');
    const spike = () => Float32Array.from(honest(l.batches[0], n), (v) => v * 40);
    expect((run.submit('solo', answer(l, spike())) as Refusal).code).toBe('outlier');
    const l2 = take(run, 'solo');
    expect(l2.batches).toEqual(l.batches);
    const g = spike();
    expect(run.submit('solo', answer(l2, g)).ok).toBe(true);
    expect(run.version).toBe(1);
    expect(run.outliersClipped).toBe(1);
    expect(run.workers.get('solo')!.strikes).toBe(0);
    expect(run.workers.get('solo')!.banned).toBeUndefined();
    // clipped to the cap: 10 × the median per-batch norm, the direction kept
    const norm = Math.sqrt(g.reduce((a, v) => a + v * v, 0));
    const honestNorm = Math.sqrt(honest(l.batches[0], n).reduce((a, v) => a + v * v, 0));
    expect(norm).toBeLessThan(12 * honestNorm);
    expect(norm).toBeGreaterThan(8 * honestNorm);
    run.dispose();
  });

  it('sumOfSquares is the finite check and the norm in one pass: NaN or ±Inf anywhere makes it non-finite, float32 extremes do not', () => {
    for (const len of [0, 1, 2, 3, 4, 5, 7, 9, 1001]) {
      const a = Float32Array.from({ length: len }, () => rng.normal());
      const ref = a.reduce((acc, v) => acc + v * v, 0);
      expect(sumOfSquares(a)).toBeCloseTo(ref, 10);
      for (const bad of [NaN, Infinity, -Infinity]) {
        for (const at of len ? [0, len - 1, len >> 1] : []) {
          const b = Float32Array.from(a);
          b[at] = bad;
          expect(Number.isFinite(sumOfSquares(b))).toBe(false);
        }
      }
    }
    const max = new Float32Array(100_000).fill(3.4028234663852886e38); // float32's largest: the float64 sum stays finite
    expect(sumOfSquares(max)).toBeCloseTo(1e5 * 3.4028234663852886e38 ** 2, -70);
  });

  it('a finite gradient of float32-max values is refused as an outlier, not as non-finite; a -Inf in the last element is named', () => {
    const run = makeRun(tinyRun({ swarm: { target_batch_size: 40, norm_screen: 10, ban_after: 5 } }));
    const n = run.layout.size;
    run.join({ workerId: 'h', kind: 'sim' });
    run.join({ workerId: 'x', kind: 'sim' });
    for (let i = 0; i < 4; i++) {
      const l = take(run, 'h');
      expect(run.submit('h', answer(l, honest(l.batches[0], n))).ok).toBe(true);
    }
    const huge = run.submit('x', answer(take(run, 'x'), new Float32Array(n).fill(3.4028234663852886e38))) as Refusal;
    expect(huge.code).toBe('outlier');
    expect(huge.reason).toMatch(/gradient norm .* over 10× the median/);
    const g = honest(1, n);
    g[n - 1] = -Infinity;
    const inf = run.submit('x', answer(take(run, 'x'), g)) as Refusal;
    expect(inf.code).toBe('non-finite');
    expect(inf.reason).toContain(`grads[${n - 1}] is -Infinity`);
    run.dispose();
  });

  it('spot checks: twins that agree count once and credit both; a liar is outvoted by a third and struck', () => {
    const run = makeRun(tinyRun({ swarm: { target_batch_size: 8, spot_check_fraction: 1, norm_screen: 0 } }));
    const n = run.layout.size;
    for (const w of ['a', 'b', 'liar']) run.join({ workerId: w, kind: 'sim' });
    // step 1: batches 0 and 1, each twice, never twice to one worker (one lease at a time each)
    const got: Record<string, number[]> = { a: [], b: [] };
    for (let round = 0; round < 2; round++) {
      for (const w of ['a', 'b']) {
        const l = take(run, w);
        got[w].push(l.batches[0]);
        expect(run.submit(w, answer(l, honest(l.batches[0], n))).ok).toBe(true);
      }
    }
    expect(got.a.sort()).toEqual([0, 1]);
    expect(got.b.sort()).toEqual([0, 1]);
    expect(run.version).toBe(1);
    expect(run.spotChecks.passed).toBe(2);
    expect(run.workers.get('a')!.samples).toBe(8);
    // step 2: the liar answers one copy with a flipped gradient; a third opinion is asked for and wins
    const l1 = take(run, 'liar'); // batch 2
    const o1 = take(run, 'b'); // batch 3
    const h1 = take(run, 'a'); // batch 2's twin
    expect([l1, o1, h1].map((l) => l.batches[0])).toEqual([2, 3, 2]);
    expect(run.submit('liar', answer(l1, Float32Array.from(honest(2, n), (v) => -v))).ok).toBe(true);
    const o2 = take(run, 'liar'); // batch 3's twin
    expect(o2.batches).toEqual([3]);
    expect(run.submit('a', answer(h1, honest(2, n))).ok).toBe(true);
    for (const [w, l] of [['b', o1], ['liar', o2]] as const) expect(run.submit(w, answer(l, honest(3, n))).ok).toBe(true);
    expect(run.version).toBe(1); // batch 2 is undecided
    const third = take(run, 'b'); // the tie-breaker goes to the one worker that has not seen it
    expect(third.batches).toEqual(l1.batches);
    expect(run.submit('b', answer(third, honest(third.batches[0], n))).ok).toBe(true);
    expect(run.version).toBe(2);
    expect(run.workers.get('liar')!).toMatchObject({ checksFailed: 1, strikes: 1 });
    expect(run.spotChecks.failed).toBe(1);
    expect([...run.applied.entries()].sort((x, y) => x[0] - y[0])).toEqual([[0, 0], [1, 0], [2, 1], [3, 1]]);
    run.dispose();
  });

  it('a spot check with a single worker around is skipped, not stalled', () => {
    const run = makeRun(tinyRun({ swarm: { target_batch_size: 8, spot_check_fraction: 1, norm_screen: 0 } }));
    const n = run.layout.size;
    run.join({ workerId: 'solo', kind: 'sim' });
    for (let i = 0; i < 2; i++) {
      const l = take(run, 'solo');
      expect(run.submit('solo', answer(l, honest(l.batches[0], n))).ok).toBe(true);
    }
    expect(run.version).toBe(1);
    expect(run.spotChecks.skipped).toBe(2);
    run.dispose();
  });

  it('NormScreen trusts its median only after warmup', () => {
    const s = new NormScreen(10, 8, 3);
    expect(s.check(1000)).toBeUndefined();
    expect(s.check(1)).toBeUndefined();
    expect(s.check(1)).toBeUndefined();
    expect(s.check(11)).toMatch(/over 10×/);
    expect(s.check(9)).toBeUndefined();
  });
});
