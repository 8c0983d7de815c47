// Defences in the run engine, without sockets: the robust aggregators against brute force and against a
// minority of huge vectors; norm screening with strikes and a ban, from the run's third gradient on and across a
// restart; spot checks that catch a lying volunteer with a third opinion and apply each batch once with an honest
// gradient; a spot check with nobody to compare skipped. Against colluders: a second outlier waits for a third
// opinion, a passed pair is confirmed, opinions avoid the holders' network; probation for new identities.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { centeredClip, coordinateMedian, NormScreen, relDistance, sumOfSquares, trimmedMean } from '../../coordinator/swarm/robust.ts';
import { SwarmRun } from '../../coordinator/swarm/run.ts';
import { encodeCorpus } from '../../shared/data/dataset.ts';
import type { Lease, Refusal, Submission } from '../../shared/protocol.ts';
import { Rng, freshSeed } from '../../shared/rng.ts';
import type { RunConfig } from '../../shared/train/run-config.ts';
import { sleep, smallCorpus, tinyRun } from './helpers.ts';

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

  it('spot checks: twins that agree count once and credit both; a liar is outvoted by a third and struck', async () => {
    // no probation: a and b have a good record after step 1, so their pair outvotes the liar at once
    const run = makeRun(tinyRun({ swarm: { target_batch_size: 8, spot_check_fraction: 1, spot_check_confirm: 0, probation: 0, norm_screen: 0 } }));
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
    // neither a nor b has a record yet (a run's start): each pair that agrees is confirmed by a third copy, from the
    // one worker that holds none (the liar answers honestly this step)
    expect(run.version).toBe(0);
    expect(run.spotChecks.confirmed).toBe(2);
    const confirmed: number[] = [];
    for (let k = 0; k < 2; k++) {
      const c = take(run, 'liar');
      confirmed.push(c.batches[0]);
      expect(run.submit('liar', answer(c, honest(c.batches[0], n))).ok).toBe(true);
    }
    expect(confirmed.sort()).toEqual([0, 1]);
    expect(run.version).toBe(1);
    expect(run.spotChecks.passed).toBe(2);
    expect(run.workers.get('a')!.samples).toBe(8);
    // step 2: the liar answers one copy with a flipped gradient; a third opinion is asked for and wins
    const l1 = take(run, 'liar'); // batch 2
    const o1 = take(run, 'b'); // batch 3
    const h1 = take(run, 'a'); // batch 2's twin
    expect([l1, o1, h1].map((l) => l.batches[0])).toEqual([2, 3, 2]);
    expect(run.submit('liar', answer(l1, Float32Array.from(honest(2, n), (v) => -v))).ok).toBe(true);
    await sleep(120); // a second opinion waits a moment for a worker with a record (a and b are busy); then the liar may
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

  it("at a run's start two colluders holding both copies of a batch do not pass each other: more copies decide by majority", () => {
    const run = makeRun(tinyRun({ swarm: { target_batch_size: 4, spot_check_fraction: 1, spot_check_confirm: 0, probation: 0, norm_screen: 0, ban_after: 5 } }));
    const n = run.layout.size;
    for (const w of ['x', 'y', 'h1', 'h2', 'h3']) run.join({ workerId: w, kind: 'sim' });
    const wrong = Float32Array.from(honest(0, n), (v, i) => (i % 2 ? -v : 3 * v)); // the same wrong gradient, twice
    const lx = take(run, 'x');
    const ly = take(run, 'y');
    expect([lx.batches, ly.batches]).toEqual([[0], [0]]);
    expect(run.submit('x', answer(lx, wrong)).ok).toBe(true);
    expect(run.submit('y', answer(ly, Float32Array.from(wrong))).ok).toBe(true);
    expect(run.version).toBe(0); // nobody has a record: the pair is not enough
    expect(run.spotChecks.confirmed).toBe(1);
    // the confirming copy disagrees, so does a fourth: two pairs and no records, so a fifth decides
    for (const h of ['h1', 'h2', 'h3']) {
      expect(run.version).toBe(0);
      const l = take(run, h);
      expect(l.batches).toEqual([0]);
      expect(run.submit(h, answer(l, honest(0, n))).ok).toBe(true);
    }
    expect(run.version).toBe(1);
    for (const w of ['x', 'y']) expect(run.workers.get(w)!).toMatchObject({ leases: 0, strikes: 1, checksFailed: 1 });
    for (const w of ['h1', 'h2', 'h3']) expect(run.workers.get(w)!).toMatchObject({ leases: 1, strikes: 0 });
    run.dispose();
  });

  it('two pairs that disagree with nobody left to ask: the coordinate-wise median, nobody credited or blamed', () => {
    const run = makeRun(tinyRun({ swarm: { target_batch_size: 4, spot_check_fraction: 1, spot_check_confirm: 0, probation: 0, norm_screen: 0 } }));
    const n = run.layout.size;
    for (const w of ['x', 'y', 'h1', 'h2']) run.join({ workerId: w, kind: 'sim' });
    const wrong = Float32Array.from(honest(0, n), (v) => -v);
    for (const [w, g] of [['x', wrong], ['y', wrong], ['h1', honest(0, n)], ['h2', honest(0, n)]] as const) {
      const l = take(run, w);
      expect(l.batches).toEqual([0]);
      expect(run.submit(w, answer(l, Float32Array.from(g))).ok).toBe(true);
    }
    expect(run.version).toBe(1);
    for (const w of ['x', 'y', 'h1', 'h2']) expect(run.workers.get(w)!).toMatchObject({ leases: 0, strikes: 0 });
    expect([...run.applied.entries()]).toEqual([[0, 0]]);
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

  it('NormScreen: during the warm-up the median of the norms seen (from 3 on), after it the median of those applied', () => {
    const s = new NormScreen(10, 8, 3);
    expect(s.check(1000)).toBeUndefined(); // the first two go unscreened
    expect(s.check(1)).toBeUndefined();
    expect(s.check(1)).toBeUndefined();
    expect(s.check(11)).toMatch(/over 10× the median 1.00 .*the run is young/);
    for (const v of [1, 2, 1]) s.accept(v);
    expect(s.cap).toBe(10);
    expect(s.check(9)).toBeUndefined();
    expect(s.check(10.5)).toMatch(/over 10×/);
    const t = new NormScreen(10, 8, 3);
    t.restore(s.snapshot());
    expect(t.cap).toBe(10);
    t.restore({ accepted: [NaN, -1, 'x' as unknown as number, 3], seen: [] });
    expect(t.medianNorm).toBeNaN(); // one valid applied norm and none seen: no reference yet
  });
});

describe(`colluders, warm-up and probation (seed ${seed})`, () => {
  const join = (run: SwarmRun, w: string, address?: string) => run.join({ workerId: w, kind: 'sim', address });
  const ok = (run: SwarmRun, w: string, g: (b: number) => Float32Array) => {
    const l = take(run, w);
    const r = run.submit(w, answer(l, g(l.batches[0])));
    return { l, r };
  };

  it('the run\'s 4th gradient is screened: a 1000× gradient after 3 honest ones is refused (it was taken unscreened)', () => {
    const run = makeRun(tinyRun({ swarm: { target_batch_size: 40, norm_screen: 10 } }));
    const n = run.layout.size;
    join(run, 'h');
    join(run, 'x');
    for (let i = 0; i < 3; i++) expect(ok(run, 'h', (b) => honest(b, n)).r.ok).toBe(true);
    const r = ok(run, 'x', (b) => Float32Array.from(honest(b, n), (v) => v * 1000)).r as Refusal;
    expect(r.code).toBe('outlier');
    run.dispose();
  });

  it('the norm screen and the volunteers\' records survive a restart (exportState / restoreState): no new warm-up, a ban stays', () => {
    const config = tinyRun({ swarm: { target_batch_size: 40, norm_screen: 10, ban_after: 1 } });
    const run = makeRun(config);
    const n = run.layout.size;
    join(run, 'h');
    join(run, 'x', '10.0.0.9');
    for (let i = 0; i < 5; i++) expect(ok(run, 'h', (b) => honest(b, n)).r.ok).toBe(true);
    const g = honest(0, n);
    g[1] = NaN;
    expect((ok(run, 'x', () => g).r as Refusal).code).toBe('non-finite');
    const state = JSON.parse(JSON.stringify(run.exportState()));
    run.dispose();
    const again = makeRun(config);
    again.restoreState(state);
    expect(again.workers.get('x')!.banned).toMatch(/non-finite/);
    join(again, 'x', '10.0.0.9');
    expect(again.lease('x')).toMatchObject({ ok: false, code: 'banned' });
    join(again, 'y');
    // the first gradient after the restart is screened against the kept history
    expect((ok(again, 'y', (b) => Float32Array.from(honest(b, n), (v) => v * 1000)).r as Refusal).code).toBe('outlier');
    again.dispose();
  });

  it('two colluding outlier senders: the second is refused too and a third, normal opinion strikes both (the second was taken clipped)', () => {
    const run = makeRun(tinyRun({ swarm: { target_batch_size: 40, norm_screen: 10, ban_after: 5 } }));
    const n = run.layout.size;
    for (const w of ['h', 'x1', 'x2']) join(run, w);
    // each does honest work first: a record, so nobody waits for a better worker below
    for (const w of ['h', 'h', 'x1', 'x2']) expect(ok(run, w, (b) => honest(b, n)).r.ok).toBe(true);
    const big = (b: number) => Float32Array.from(honest(b, n), (v) => v * -1000);
    const first = ok(run, 'x1', big);
    expect((first.r as Refusal).code).toBe('outlier');
    const second = ok(run, 'x2', big);
    expect(second.l.batches).toEqual(first.l.batches);
    expect((second.r as Refusal).code).toBe('outlier');
    expect(run.outliersClipped).toBe(0);
    const third = ok(run, 'h', (b) => honest(b, n));
    expect(third.l.batches).toEqual(first.l.batches);
    expect(third.r.ok).toBe(true);
    expect(run.workers.get('x1')!.strikes).toBe(1);
    expect(run.workers.get('x2')!.strikes).toBe(1);
    run.dispose();
  });

  it("a stranger's normal answer for an outlier's batch is applied but strikes nobody (it could be a lie about an honest spike)", async () => {
    const run = makeRun(tinyRun({ swarm: { target_batch_size: 40, norm_screen: 10, ban_after: 5 } }));
    const n = run.layout.size;
    for (const w of ['h', 'x']) join(run, w);
    for (const w of ['h', 'h', 'x', 'h']) expect(ok(run, w, (b) => honest(b, n)).r.ok).toBe(true);
    const bad = ok(run, 'x', (b) => Float32Array.from(honest(b, n), (v) => v * 1000));
    expect((bad.r as Refusal).code).toBe('outlier');
    join(run, 'stranger');
    await sleep(120); // past the moment in which the batch waits for a worker with a record (h is idle, but asks no more)
    const redo = ok(run, 'stranger', (b) => honest(b, n));
    expect(redo.l.batches).toEqual(bad.l.batches);
    expect(redo.r.ok).toBe(true);
    expect(run.workers.get('x')!.strikes).toBe(0);
    run.dispose();
  });

  it('an honest spike seen by three workers: the third is taken clipped, nobody is struck', () => {
    const run = makeRun(tinyRun({ swarm: { target_batch_size: 40, norm_screen: 10, ban_after: 1 } }));
    const n = run.layout.size;
    for (const w of ['a', 'b', 'c']) join(run, w);
    for (const w of ['a', 'b', 'c', 'a']) expect(ok(run, w, (b) => honest(b, n)).r.ok).toBe(true);
    const spike = (b: number) => Float32Array.from(honest(b, n), (v) => v * 40);
    const codes = ['a', 'b', 'c'].map((w) => ok(run, w, spike).r);
    expect(codes.map((r) => (r.ok ? 'taken' : r.code))).toEqual(['outlier', 'outlier', 'taken']);
    expect(run.outliersClipped).toBe(1);
    for (const w of ['a', 'b', 'c']) expect(run.workers.get(w)!.strikes).toBe(0);
    run.dispose();
  });

  it('colluding twins that agree on a wrong gradient: the pass is confirmed by a third copy, a fourth decides, the twins are struck', async () => {
    const run = makeRun(tinyRun({ swarm: { target_batch_size: 8, spot_check_fraction: 1, spot_check_confirm: 0, probation: 0, norm_screen: 0, ban_after: 5 } }));
    const n = run.layout.size;
    join(run, 'h1');
    join(run, 'h2');
    // step 1 by the honest pair alone: both get a record
    for (const w of ['h1', 'h2', 'h1', 'h2']) expect(ok(run, w, (b) => honest(b, n)).r.ok).toBe(true);
    expect(run.version).toBe(1);
    join(run, 't1');
    join(run, 't2');
    const wrong = (b: number) => Float32Array.from(honest(b, n), (v, i) => (i % 2 ? v : -v));
    const l1 = take(run, 't1'); // batch 2
    const lh1 = take(run, 'h1'); // batch 3
    await sleep(120); // a stranger waits a moment for a worker with a record to give the second opinion; then it may
    const l2 = take(run, 't2'); // batch 2's copy
    const lh2 = take(run, 'h2'); // batch 3's copy
    expect([l1, l2, lh1, lh2].map((l) => l.batches[0])).toEqual([2, 2, 3, 3]);
    for (const [w, l] of [['t1', l1], ['t2', l2]] as const) expect(run.submit(w, answer(l, wrong(2))).ok).toBe(true);
    for (const [w, l] of [['h1', lh1], ['h2', lh2]] as const) expect(run.submit(w, answer(l, honest(3, n))).ok).toBe(true);
    expect(run.version).toBe(1); // the twins agreed, but neither has a record: a third copy confirms
    expect(run.spotChecks.confirmed).toBe(1);
    for (const w of ['h1', 'h2']) {
      const l = take(run, w);
      expect(l.batches).toEqual([2]);
      expect(run.submit(w, answer(l, honest(2, n))).ok).toBe(true);
    }
    expect(run.version).toBe(2);
    for (const w of ['t1', 't2']) expect(run.workers.get(w)).toMatchObject({ strikes: 1, checksFailed: 1 });
    for (const w of ['h1', 'h2']) expect(run.workers.get(w)!.strikes).toBe(0);
    run.dispose();
  });

  it("a spot check's copy does not go to a worker on its holder's network while one from another network is around", () => {
    const run = makeRun(tinyRun({ swarm: { target_batch_size: 4, spot_check_fraction: 1, spot_check_confirm: 0, probation: 0, norm_screen: 0 } }));
    join(run, 't1', '203.0.113.7');
    join(run, 't2', '203.0.113.7');
    join(run, 'h', '198.51.100.1');
    expect(take(run, 't1').batches).toEqual([0]);
    expect(run.lease('t2')).toMatchObject({ ok: true, wait: expect.any(Number) });
    expect(take(run, 'h').batches).toEqual([0]);
    run.dispose();
  });

  it('probation: a new identity\'s leases are all checked until it passed `probation` checks; from a network with a banned identity, longer', () => {
    const run = makeRun(tinyRun({ swarm: { target_batch_size: 8, spot_check_fraction: 1e-9, spot_check_confirm: 0, probation: 4, probation_after_ban: 10, norm_screen: 0, ban_after: 1 } }));
    const n = run.layout.size;
    join(run, 'a', '192.0.2.1');
    join(run, 'b', '192.0.2.2');
    // steps 1 and 2: two batches each, each answered by both (a probation lease's second copy goes to the other
    // worker, and every passed check counts for both)
    const seen: number[] = [];
    for (const w of ['a', 'b', 'a', 'b']) {
      const { l, r } = ok(run, w, (b) => honest(b, n));
      seen.push(l.batches[0]);
      expect(r.ok).toBe(true);
    }
    expect(seen).toEqual([0, 1, 1, 0]);
    expect(run.version).toBe(1);
    for (const w of ['a', 'b']) expect(run.workers.get(w)!.checksPassed).toBe(2);
    for (const w of ['a', 'b', 'a', 'b']) expect(ok(run, w, (b) => honest(b, n)).r.ok).toBe(true);
    expect(run.version).toBe(2);
    // off probation: step 3 is two plain leases
    for (const w of ['a', 'b']) expect(ok(run, w, (b) => honest(b, n)).r.ok).toBe(true);
    expect(run.version).toBe(3);
    run.dispose();
    // an identity from 192.0.2.66 is banned; the next new identity from there gets the longer probation, not a ban
    const other = makeRun(tinyRun({ swarm: { target_batch_size: 8, spot_check_fraction: 1e-9, probation: 4, probation_after_ban: 10, ban_after: 1 } }));
    join(other, 'x', '192.0.2.66');
    const g = honest(0, n);
    g[0] = NaN;
    expect((ok(other, 'x', () => g).r as Refusal).code).toBe('non-finite');
    expect(other.workers.get('x')!.banned).toBeDefined();
    join(other, 'y', '192.0.2.66');
    join(other, 'z', '192.0.2.67');
    expect(other.workers.get('y')!.probation).toBe(10);
    expect(other.workers.get('z')!.probation).toBe(4);
    expect(other.lease('y')).toMatchObject({ ok: true, lease: expect.any(Object) });
    other.dispose();
  });
});
