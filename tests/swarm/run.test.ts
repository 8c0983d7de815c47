// The coordinator's run engine (coordinator/swarm/run.ts) without sockets: a step is exactly the single-worker
// step (same batches, sum → clip → AdamW), every batch is applied once through leaves, timeouts, duplicates and
// refusals, eval leases see the weights they name, and an early-closed step takes stale answers within
// max_staleness. Gradients are fresh random arrays per batch index (no GPU here).
import { describe, expect, it } from 'vitest';
import { SwarmRun } from '../../coordinator/swarm/run.ts';
import { encodeCorpus } from '../../shared/data/dataset.ts';
import { initParams } from '../../shared/models/init.ts';
import type { Lease, Refusal, Submission } from '../../shared/protocol.ts';
import { adamwStep } from '../../shared/reference/adamw.ts';
import { CpuAdamW } from '../../shared/train/adamw-cpu.ts';
import { clipGrads } from '../../shared/train/clip.ts';
import { learningRate } from '../../shared/train/schedule.ts';
import { Rng, freshSeed } from '../../shared/rng.ts';
import type { RunConfig } from '../../shared/train/run-config.ts';
import { readFileSync } from 'node:fs';
import { smallCorpus, sleep, tinyRun, until } from './helpers.ts';

const seed = freshSeed();
/** the fake gradient of train batch i: fresh per test run, a pure function of i within it */
function gradOf(i: number, n: number): Float32Array {
  const r = new Rng((seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0);
  const g = new Float32Array(n);
  for (let k = 0; k < n; k++) g[k] = r.normal() * 0.05;
  return g;
}

/** a clock the test moves (SwarmRun's `now`) */
interface Clock {
  t: number;
}

function makeRun(c: RunConfig, clock?: Clock): SwarmRun {
  const { tokenizer, dataset } = encodeCorpus(readFileSync(smallCorpus(), 'utf8'));
  const run = new SwarmRun('t', 't', c, tokenizer, dataset, clock ? { now: () => clock.t } : {});
  run.on('error', () => {});
  return run;
}

const join = (run: SwarmRun, id: string) => run.join({ workerId: id, kind: 'sim' });

function take(run: SwarmRun, worker: string): Lease {
  const r = run.lease(worker);
  if (!r.ok || !('lease' in r)) throw new Error(`no lease: ${JSON.stringify(r)}`);
  return r.lease;
}

/** a lease for the worker, asking again after each wait it is told (up to 2 s; or, with a clock, moving it on) */
async function takeWhenDue(run: SwarmRun, worker: string, clock?: Clock): Promise<Lease> {
  const end = performance.now() + 2000;
  for (let asks = 0; ; asks++) {
    const r = run.lease(worker);
    if (r.ok && 'lease' in r) return r.lease;
    if (!r.ok || performance.now() > end || asks > 10_000) throw new Error(`no lease: ${JSON.stringify(r)}`);
    if (clock) clock.t += r.wait;
    else await sleep(r.wait);
  }
}

function answer(run: SwarmRun, l: Lease, n: number): Submission {
  if (l.kind === 'eval') return { runId: l.runId, leaseId: l.leaseId, version: l.version, losses: l.batches.map((b) => 3 + b / 10) };
  const grads = new Float32Array(n);
  for (const b of l.batches) {
    const g = gradOf(b, n);
    for (let k = 0; k < n; k++) grads[k] += g[k];
  }
  return { runId: l.runId, leaseId: l.leaseId, version: l.version, loss: 2.5, grads };
}

describe(`swarm run engine (seed ${seed})`, () => {
  it('keeps no reference to a submitted gradient (the coordinator recycles its buffer) and never writes a published params array', () => {
    // spot checks on half the batches: their answers are held until a second copy comes, the path most likely to keep one
    const c = tinyRun({ swarm: { target_batch_size: 12, batches_per_lease: 1, spot_check_fraction: 0.5 } });
    const steps = (poison: boolean) => {
      const run = makeRun(c);
      const n = run.layout.size;
      for (const w of ['a', 'b', 'c']) join(run, w);
      const published: [Float32Array, Float32Array][] = [];
      run.on('weights', (_, p) => published.push([p, Float32Array.from(p)]));
      for (let guard = 0; run.version < 3 && guard < 200; guard++) {
        for (const w of ['a', 'b', 'c']) {
          const r = run.lease(w);
          if (!r.ok || !('lease' in r)) continue;
          const sub = answer(run, r.lease, n);
          expect(run.submit(w, sub).ok).toBe(true);
          if (poison && sub.grads) sub.grads.fill(NaN); // as the next upload overwrites a recycled buffer
        }
      }
      expect(run.version).toBe(3);
      for (const [p, copy] of published) expect(p).toEqual(copy);
      return run.params;
    };
    const clean = steps(false);
    const poisoned = steps(true);
    expect(poisoned.every(Number.isFinite)).toBe(true);
    expect(new Uint32Array(poisoned.buffer)).toEqual(new Uint32Array(clean.buffer));
  });

  it('K steps through several workers equal the single-worker steps on the same batches', () => {
    const c = tinyRun({ swarm: { target_batch_size: 12, batches_per_lease: 2 } });
    const run = makeRun(c);
    const n = run.layout.size;
    const A = run.accum;
    expect(A).toBe(3);
    for (const w of ['a', 'b', 'c']) join(run, w);
    const K = 4;
    for (let s = 0; s < K; s++) {
      // out of order: c, a, b take leases, answers come back reversed
      const leases: [string, Lease][] = [];
      for (const w of ['c', 'a', 'b']) {
        const r = run.lease(w);
        if (r.ok && 'lease' in r) leases.push([w, r.lease]);
      }
      expect(leases.flatMap(([, l]) => l.batches).sort((x, y) => x - y)).toEqual([s * A, s * A + 1, s * A + 2]);
      for (const [w, l] of leases.reverse()) expect(run.submit(w, answer(run, l, n)).ok).toBe(true);
      expect(run.version).toBe(s + 1);
    }
    // the single worker: grad_accum_steps = A, sum of the A batch gradients, clipGrads(sum, clip, A), AdamW
    const params = initParams(c.model, c.train.seed);
    const opt = new CpuAdamW(run.layout, c.optim);
    for (let s = 0; s < K; s++) {
      const sum = new Float32Array(n);
      for (let m = 0; m < A; m++) {
        const g = gradOf(s * A + m, n);
        for (let k = 0; k < n; k++) sum[k] += g[k];
      }
      opt.step(params, sum, learningRate(s, c.optim), clipGrads(sum, c.optim.grad_clip, A).gradScale);
    }
    let maxRel = 0;
    for (let k = 0; k < n; k++) maxRel = Math.max(maxRel, Math.abs(params[k] - run.params[k]));
    expect(maxRel).toBeLessThan(1e-6); // the sums differ only in order
    expect([...run.applied.entries()].sort((x, y) => x[0] - y[0])).toEqual(Array.from({ length: K * A }, (_, i) => [i, Math.floor(i / A)]));
    run.dispose();
  });

  it('given inUse, a step writes in place when nobody reads the weights, else into a free older array or a new one, with the same results', () => {
    const busy = new Set<Float32Array>();
    const { tokenizer, dataset } = encodeCorpus(readFileSync(smallCorpus(), 'utf8'));
    const c = tinyRun({ swarm: { target_batch_size: 4 } });
    const run = new SwarmRun('t', 't', c, tokenizer, dataset, { inUse: (p) => busy.has(p) });
    // the same answers to a run told nothing: a new array every step
    const plain = new SwarmRun('p', 'p', c, tokenizer, dataset);
    const n = run.layout.size;
    join(run, 'a');
    join(plain, 'a');
    const step = () => {
      const v = run.version;
      while (run.version === v) {
        const l = take(run, 'a');
        expect(run.submit('a', answer(run, l, n)).ok).toBe(true);
        expect(plain.submit('a', answer(plain, take(plain, 'a'), n)).ok).toBe(true);
      }
      expect(plain.version).toBe(run.version);
      expect(new Uint32Array(run.params.buffer)).toEqual(new Uint32Array(plain.params.buffer));
      return run.params;
    };
    const p0 = run.params;
    const p1 = step(); // nobody reads p0: in place
    expect(p1).toBe(p0);
    busy.add(p1); // a download of version 1 is still going out
    const copy = Float32Array.from(p1);
    const p2 = step();
    expect(p2).not.toBe(p1);
    expect(p1).toEqual(copy);
    busy.add(p2); // and one of version 2
    const p3 = step(); // p1 is still read: a third array
    expect([p1, p2]).not.toContain(p3);
    busy.delete(p2); // version 2's downloads are over, version 3's go on
    busy.add(p3);
    expect(step()).toBe(p2); // the version before last, free again
    busy.clear();
    expect(step()).toBe(p2); // nobody reads it: in place
    run.dispose();
    plain.dispose();
  });

  it('CpuAdamW is torch AdamW (the float64 reference) with decay only where the layout says, in place or into another array', () => {
    const c = tinyRun();
    const run = makeRun(c);
    const n = run.layout.size;
    const p32 = initParams(c.model, 3);
    const opt = new CpuAdamW(run.layout, c.optim);
    const p64 = Float64Array.from(p32);
    const m = new Float64Array(n);
    const v = new Float64Array(n);
    for (let t = 1; t <= 3; t++) {
      const g = gradOf(100 + t, n);
      if (t === 2) {
        // out of place (as the coordinator steps): the same result in `out`, the input left as it was
        const before = p32.slice();
        const out = new Float32Array(n).fill(NaN);
        opt.step(p32, g, 1e-2, 0.5, out);
        expect(p32).toEqual(before);
        p32.set(out);
      } else opt.step(p32, g, 1e-2, 0.5);
      for (const p of run.layout.params) {
        const sl = (a: Float64Array) => a.subarray(p.offset, p.offset + p.numel);
        const gs = Float64Array.from(g.subarray(p.offset, p.offset + p.numel), (x) => x * 0.5);
        adamwStep(sl(p64), gs, sl(m), sl(v), { lr: 1e-2, beta1: c.optim.betas[0], beta2: c.optim.betas[1], eps: c.optim.eps, weightDecay: p.decay ? c.optim.weight_decay : 0, step: t });
      }
    }
    let worst = 0;
    for (let k = 0; k < n; k++) worst = Math.max(worst, Math.abs(p32[k] - p64[k]));
    expect(worst).toBeLessThan(1e-6);
    expect(run.layout.params.some((p) => p.decay) && run.layout.params.some((p) => !p.decay)).toBe(true);
    run.dispose();
  });

  it('refuses duplicates, wrong versions, wrong shapes, NaN and other workers\' leases, losing no batch', () => {
    const run = makeRun(tinyRun({ swarm: { target_batch_size: 8 } }));
    const n = run.layout.size;
    join(run, 'a');
    join(run, 'b');
    const code = (r: unknown) => (r as Refusal).code;
    const l1 = take(run, 'a');
    const l2 = take(run, 'b');
    expect(code(run.submit('b', answer(run, l1, n)))).toBe('not-your-lease');
    expect(code(run.submit('a', { ...answer(run, l1, n), version: 5 }))).toBe('stale');
    expect(code(run.submit('a', { ...answer(run, l1, n), grads: new Float32Array(n - 1) }))).toBe('bad-shape');
    // a refused answer put its batch back: the next lease carries it
    const again = take(run, 'a');
    expect(again.batches).toEqual(l1.batches);
    const bad = answer(run, again, n);
    bad.grads![n - 1] = NaN;
    const nan = run.submit('a', bad) as Refusal;
    expect(nan.code).toBe('non-finite');
    expect(nan.reason).toMatch(/grads\[\d+\] is NaN \(in [a-z_.0-9]+\)/);
    const third = take(run, 'a');
    expect(third.batches).toEqual(l1.batches);
    expect(run.submit('a', answer(run, third, n)).ok).toBe(true);
    expect(code(run.submit('a', answer(run, third, n)))).toBe('duplicate');
    expect(code(run.submit('a', { ...answer(run, third, n), leaseId: 'nope' }))).toBe('unknown-lease');
    expect(run.submit('b', answer(run, l2, n)).ok).toBe(true);
    expect(run.version).toBe(1);
    expect([...run.applied.keys()].sort()).toEqual([0, 1]);
    expect(run.workers.get('a')!.refused).toEqual({ stale: 1, 'bad-shape': 1, 'non-finite': 1, duplicate: 1, 'unknown-lease': 1 });
    expect(run.workers.get('b')!.refused['not-your-lease']).toBe(1);
    expect(run.workers.get('a')!.refused['duplicate']).toBe(1);
    run.dispose();
  });

  it('a worker that leaves or goes silent loses only its leases: they go to others, late answers are refused, every batch applied once', async () => {
    const run = makeRun(tinyRun({ swarm: { target_batch_size: 12, lease_timeout_s: 0.4 } }));
    const n = run.layout.size;
    for (const w of ['a', 'b', 'c']) join(run, w);
    const la = take(run, 'a');
    const lb = take(run, 'b');
    const lc = take(run, 'c');
    run.leave('a'); // tab closed mid-lease: back at once
    expect(run.lease('c')).toMatchObject({ ok: true, why: expect.stringMatching(/answer the lease you hold first/) });
    expect(run.submit('c', answer(run, lc, n)).ok).toBe(true);
    const reassigned = take(run, 'c');
    expect(reassigned.batches).toEqual(la.batches);
    expect(run.submit('c', answer(run, reassigned, n)).ok).toBe(true);
    expect((run.submit('a', answer(run, la, n)) as Refusal).code).toBe('expired');
    // b goes silent: after the timeout its batch is handed out again
    expect(run.lease('c')).toMatchObject({ ok: true, wait: expect.any(Number) });
    await until(() => {
      const r = run.lease('c');
      if (r.ok && 'lease' in r) {
        expect(r.lease.batches).toEqual(lb.batches);
        expect(run.submit('c', answer(run, r.lease, n)).ok).toBe(true);
        return true;
      }
      return false;
    }, 5000, 'the silent lease to time out');
    // c got b's batch as a backup (after 250 ms) or after b's lease timed out: b's late answer is refused either way
    expect(['duplicate', 'expired']).toContain((run.submit('b', answer(run, lb, n)) as Refusal).code);
    expect(run.version).toBe(1);
    expect([...run.applied.entries()].sort((x, y) => x[0] - y[0])).toEqual([[0, 0], [1, 0], [2, 0]]);
    expect(run.workers.get('c')!.samples).toBe(12);
    run.dispose();
  });

  it('eval leases come first on the weights they name; the next step waits for them', () => {
    const run = makeRun(tinyRun({ swarm: { target_batch_size: 4 }, train: { eval_interval: 1, eval_batches: 3, max_steps: 2 } }));
    const n = run.layout.size;
    join(run, 'a');
    run.join({ workerId: 'b', kind: 'sim' });
    run.join({ workerId: 'c', kind: 'sim' });
    run.join({ workerId: 'd', kind: 'sim' });
    const evals = [take(run, 'a'), take(run, 'b'), take(run, 'c')];
    expect(evals.map((l) => [l.kind, l.batches[0], l.version])).toEqual([['eval', 0, 0], ['eval', 1, 0], ['eval', 2, 0]]);
    const t = take(run, 'd');
    expect(t.kind).toBe('train');
    expect(run.submit('d', answer(run, t, n)).ok).toBe(true);
    expect(run.version).toBe(0); // eval of version 0 still out
    for (const [w, l] of [['a', evals[0]], ['b', evals[1]], ['c', evals[2]]] as const) expect(run.submit(w, answer(run, l, n)).ok).toBe(true);
    expect(run.version).toBe(1);
    expect(run.valHistory.map((v) => [v.step, +v.valLoss.toFixed(6)])).toEqual([[0, 3.1]]);
    // step 2 is the last: eval of version 2 finishes the run
    for (const w of ['a', 'b', 'c']) expect(take(run, w).kind).toBe('eval'); // eval at version 1 (interval 1)
    expect(run.lease('d')).toMatchObject({ ok: true });
    run.dispose();
  });

  it('an early-closed step takes answers from the step before within max_staleness and refuses older ones', async () => {
    const c = tinyRun({ swarm: { target_batch_size: 8, step_timeout_s: 0.3, min_batch_size: 4, max_staleness: 1 } });
    const run = makeRun(c);
    const n = run.layout.size;
    join(run, 'a');
    join(run, 'slow');
    const slow = take(run, 'slow');
    const fast = take(run, 'a');
    expect(run.submit('a', answer(run, fast, n)).ok).toBe(true);
    await until(() => run.version === 1, 3000, 'the step deadline');
    expect(run.history[0].samples).toBe(4);
    expect(run.submit('slow', answer(run, slow, n)).ok).toBe(true); // 1 behind: counted in step 2
    expect(run.applied.get(slow.batches[0])).toBe(1);
    run.dispose();

    const strict = makeRun(tinyRun({ swarm: { target_batch_size: 8, step_timeout_s: 0.3, min_batch_size: 4, max_staleness: 0 } }));
    join(strict, 'a');
    join(strict, 'slow');
    const s2 = take(strict, 'slow');
    expect(strict.submit('a', answer(strict, take(strict, 'a'), n)).ok).toBe(true);
    await until(() => strict.version === 1, 3000, 'the step deadline');
    const r = strict.submit('slow', answer(strict, s2, n)) as Refusal;
    expect(r.code).toBe('stale');
    expect(r.reason).toMatch(/max_staleness 0/);
    await sleep(10);
    strict.dispose();
  });
});

describe('backup leases', () => {
  it("a straggler's batches go to a waiting worker as a backup; the first answer counts, the other is a duplicate", async () => {
    // a backup once the lease is out 3× the usual turnaround (the answers here are instant: after 50 ms)
    const run = makeRun(tinyRun({ swarm: { target_batch_size: 8, lease_timeout_s: 2 } }));
    const n = run.layout.size;
    join(run, 'slow');
    join(run, 'fast');
    const s0 = take(run, 'slow');
    const f0 = take(run, 'fast');
    expect(run.submit('fast', answer(run, f0, n)).ok).toBe(true);
    expect(run.lease('fast')).toMatchObject({ ok: true, wait: expect.any(Number) }); // too early for a backup
    await sleep(1100);
    const backup = take(run, 'fast');
    expect(backup.batches).toEqual(s0.batches);
    expect(run.backups).toBe(1);
    expect(run.submit('fast', answer(run, backup, n)).ok).toBe(true);
    expect(run.version).toBe(1);
    expect((run.submit('slow', answer(run, s0, n)) as Refusal).code).toBe('duplicate');
    expect([...run.applied.entries()].sort((a, b) => a[0] - b[0])).toEqual([[0, 0], [1, 0]]);
    run.dispose();
  });

  it('a hoarded lease costs its step about 3× the usual turnaround, not the lease timeout (a newcomer\'s first lease: a quarter of it); a hoarder beaten twice in a row is struck, a straggler that answers late is not', async () => {
    // a 60 s lease timeout: before, every backup waited a quarter of it (15 s) and each hoarded step took that long
    const clock = { t: 0 };
    const run = makeRun(tinyRun({ swarm: { target_batch_size: 12, lease_timeout_s: 60, ban_after: 5 } }), clock);
    const n = run.layout.size;
    run.join({ workerId: 'hoarder', kind: 'sim', address: '203.0.113.9' });
    for (const w of ['a', 'b']) run.join({ workerId: w, kind: 'sim', address: `198.51.100.${w === 'a' ? 1 : 2}` });
    const stepMs: number[] = [];
    for (let step = 0; step < 2; step++) {
      const t0 = clock.t;
      const h = take(run, 'hoarder'); // asks first at every opening, never answers
      const mine = ['a', 'b'].map((w) => [w, take(run, w)] as const);
      for (const [w, l] of mine) expect(run.submit(w, answer(run, l, n)).ok).toBe(true);
      // a waiting worker is told to come back when the hoarded lease is late, and then gets a copy of it
      expect(run.lease('a')).toMatchObject({ ok: true, wait: expect.any(Number) });
      const backup = await takeWhenDue(run, 'a', clock);
      expect(backup.batches).toEqual(h.batches);
      expect(run.submit('a', answer(run, backup, n)).ok).toBe(true);
      expect(run.version).toBe(step + 1);
      stepMs.push(clock.t - t0);
    }
    // the hoarder's first lease had a newcomer's slack; once it was beaten without ever answering, none; beaten twice
    // in a row with no answer between: a strike
    expect(stepMs[0]).toBeGreaterThanOrEqual(15_000);
    expect(stepMs[1]).toBeLessThan(1000);
    expect(run.workers.get('hoarder')).toMatchObject({ beaten: 2, strikes: 1 });
    // step 3: a slow honest volunteer and a new identity from the hoarder's network (no slack for that one)
    run.join({ workerId: 'slow', kind: 'sim', address: '192.0.2.7' });
    run.join({ workerId: 'hoarder2', kind: 'sim', address: '203.0.113.9' });
    // (strangers both: each waits a moment in case a worker with a record takes the batch)
    const slow = await takeWhenDue(run, 'slow', clock);
    const h2 = await takeWhenDue(run, 'hoarder2', clock);
    const t0 = clock.t;
    const la = take(run, 'a');
    expect(run.submit('a', answer(run, la, n)).ok).toBe(true);
    const copy = await takeWhenDue(run, 'b', clock);
    expect(copy.batches).toEqual(h2.batches);
    expect(clock.t - t0).toBeLessThan(1000);
    expect(run.submit('b', answer(run, copy, n)).ok).toBe(true);
    const copy2 = await takeWhenDue(run, 'a', clock); // the slow newcomer's lease, after its slack
    expect(copy2.batches).toEqual(slow.batches);
    expect(run.submit('a', answer(run, copy2, n)).ok).toBe(true);
    expect(run.version).toBe(3);
    // step 4: the first hoarder, a suspect now, takes what the others leave and is beaten again
    const h = take(run, 'hoarder');
    for (const w of ['a', 'b']) expect(run.submit(w, answer(run, take(run, w), n)).ok).toBe(true);
    const copy3 = await takeWhenDue(run, 'a', clock);
    expect(copy3.batches).toEqual(h.batches);
    expect(run.submit('a', answer(run, copy3, n)).ok).toBe(true);
    expect(run.workers.get('hoarder')).toMatchObject({ beaten: 3, strikes: 1 });
    // the straggler answers its beaten lease late, which shows it was working: no strike
    expect((run.submit('slow', answer(run, slow, n)) as Refusal).code).toBe('duplicate');
    expect(run.workers.get('slow')).toMatchObject({ beaten: 1, strikes: 0 });
    run.dispose();
  });

  it('a worker beaten while it fetched the next weights (it skips that lease and asks holding them) is not struck', async () => {
    const clock = { t: 0 };
    const run = makeRun(tinyRun({ swarm: { target_batch_size: 8, lease_timeout_s: 60, ban_after: 1 } }), clock);
    const n = run.layout.size;
    for (const w of ['fetcher', 'a']) join(run, w);
    take(run, 'fetcher'); // then its weights download is slow, every time
    for (let step = 0; step < 3; step++) {
      expect(run.submit('a', answer(run, take(run, 'a'), n)).ok).toBe(true);
      const copy = await takeWhenDue(run, 'a', clock);
      expect(run.submit('a', answer(run, copy, n)).ok).toBe(true);
      expect(run.version).toBe(step + 1);
      // it now holds the new weights, sees its lease is for the old ones, skips it and asks again
      expect(run.lease('fetcher', run.version)).toMatchObject({ ok: true, lease: expect.any(Object) });
    }
    expect(run.workers.get('fetcher')!.beaten).toBe(3);
    expect(run.workers.get('fetcher')!.strikes).toBe(0);
    run.dispose();
  });

  it('queued batches go to workers with a record first: a stranger waits while enough of them are idle', () => {
    const run = makeRun(tinyRun({ swarm: { target_batch_size: 8, lease_timeout_s: 60 } }));
    const n = run.layout.size;
    for (const w of ['g1', 'g2']) join(run, w);
    const first = ['g1', 'g2'].map((w) => [w, take(run, w)] as const);
    for (const [w, l] of first) expect(run.submit(w, answer(run, l, n)).ok).toBe(true);
    expect(run.version).toBe(1);
    join(run, 'stranger');
    const r = run.lease('stranger');
    expect(r).toMatchObject({ ok: true, wait: expect.any(Number), why: expect.stringMatching(/with a record/) });
    const l1 = take(run, 'g1');
    // one batch left and one idle worker with a record: the stranger still waits; once g2 is busy it is not deferred
    expect(run.lease('stranger')).toMatchObject({ ok: true, wait: expect.any(Number) });
    const l2 = take(run, 'g2');
    expect(l2.batches).not.toEqual(l1.batches);
    run.dispose();
  });
});
