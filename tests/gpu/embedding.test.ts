// embedding in headless Chromium (WebGPU), forward and backward, against the float64 reference on fresh random
// inputs with NaN-poisoned outputs; then, in Node (Dawn), what the op table cannot show: the backward is
// bit-for-bit the fp32 sum in an order fixed by idx (so every volunteer gets the same bits), accumulate mode adds
// onto used rows only, and bad inputs are refused with clear messages.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpHost } from '../../client/host/op-host.ts';
import { openNodeGpu } from '../../client/host/node-gpu.ts';
import { embedding, embeddingBackward } from '../../client/ops/embedding.ts';
import { runOp } from '../../client/runner.ts';
import type { Gpu } from '../../client/runtime/gpu.ts';
import { freshSeed, Rng } from '../../shared/rng.ts';
import { casesOf, check, openHarness } from './page.ts';

let host: OpHost;
beforeAll(async () => {
  host = await openHarness();
});
afterAll(() => host?.close());

describe.each(['embedding'])('%s', (op) => {
  it.each(casesOf(op))('%s', async (c) => {
    const r = await check(host, op, c);
    expect(Object.keys(r.errors)).toContain('grad_weight');
    expect(r.ok).toBe(true);
  });
});

/**
 * dweight in fp32 in the order the backward promises (shaders/embedding.wgsl): positions sorted stably by
 * index; each row's terms added one after another, except that every aligned chunk of 64 sorted positions
 * lying wholly inside the row is added as its own sequential sum. The GPU must reproduce it bit for bit.
 */
function fp32Sums(idx: Int32Array, dout: Float32Array, V: number, C: number, pad = -1): Float32Array {
  const L = 64;
  const order = [...idx.keys()].sort((a, b) => idx[a] - idx[b] || a - b);
  const run = (init: number, lo: number, hi: number, c: number) => {
    let s = init;
    for (let j = lo; j < hi; j++) s = Math.fround(s + dout[order[j] * C + c]);
    return s;
  };
  const dw = new Float32Array(V * C);
  for (let lo = 0; lo < order.length; ) {
    const v = idx[order[lo]];
    let hi = lo;
    while (hi < order.length && idx[order[hi]] === v) hi++;
    if (v !== pad) {
      const [q0, q1] = [Math.ceil(lo / L), Math.floor(hi / L)];
      for (let c = 0; c < C; c++) {
        let s = 0;
        if (q0 < q1) {
          s = run(0, lo, q0 * L, c);
          for (let q = q0; q < q1; q++) s = Math.fround(s + run(0, q * L, (q + 1) * L, c));
          s = run(s, q1 * L, hi, c);
        } else s = run(0, lo, hi, c);
        dw[v * C + c] = s;
      }
    }
    lo = hi;
  }
  return dw;
}

describe('embedding backward in Node (Dawn)', () => {
  let g: Gpu;
  beforeAll(async () => {
    g = await openNodeGpu();
  });
  afterAll(() => g?.destroy());

  // Both launch shapes (by row when V ≤ N, by sorted position when N < V), two radix passes each; few distinct
  // indices make long runs of repeats; C = 19 leaves a partial group of 4 channels per thread
  it.each([
    ['by row', 300],
    ['by run', 5000],
  ])('is bit-for-bit the fp32 sum in its fixed order, run after run (%s)', async (_, V) => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const [C, N] = [19, 3001];
    const stride = Math.floor(V / 13);
    const idx = rng.ints(N, 12).map((k) => k * stride + 7); // 12 rows used, spread over both digits
    const dout = rng.normals(N * C);
    const want = fp32Sums(idx, dout, V, C);
    const runs: Float32Array[] = [];
    for (let r = 0; r < 3; r++) {
      const got = await runOp(g, 'embedding', { idx: { shape: [N], data: idx }, weight: { shape: [V, C], data: new Float32Array(V * C) }, grad_out: { shape: [N, C], data: dout } }, {}, true);
      runs.push(got.grad_weight.data as Float32Array);
    }
    for (const r of runs) expect(Buffer.from(r.buffer).equals(Buffer.from(want.buffer)), `seed ${seed}`).toBe(true);
  });

  // V = 40 > N = 9 launches by run (dweight is not zeroed), V = 8 by row (every row visited)
  it.each([
    ['by run', 40],
    ['by row', 8],
  ])('accumulates onto used rows only, and leaves the padding row alone (%s)', async (_, V) => {
    const rng = new Rng(freshSeed());
    const C = 9;
    const idx = Int32Array.from([3, 5, 3, V - 1, 5, 3, 0, 6, 6]);
    const dout = rng.normals(idx.length * C);
    const before = rng.normals(V * C);
    const gi = g.upload({ shape: [3, 3], data: idx });
    const gd = g.upload({ shape: [3, 3, C], data: dout });
    const acc = g.upload({ shape: [V, C], data: before });
    embeddingBackward(g, gi, gd, V, { out: acc, accumulate: true, paddingIdx: -1 }); // row V - 1 is padding
    const got = (await g.read(acc)) as Float32Array;
    const sums = fp32Sums(idx, dout, V, C, V - 1);
    const used = new Set([0, 3, 5, 6]);
    for (let v = 0; v < V; v++) {
      for (let c = 0; c < C; c++) {
        const i = v * C + c;
        expect(got[i], `row ${v}`).toBe(used.has(v) ? Math.fround(before[i] + sums[i]) : before[i]);
      }
    }
    g.release(gi, gd, acc);
  });

  it('reads rows in the forward pass, for every index shape', async () => {
    const w = g.upload({ shape: [4, 3], data: Float32Array.from({ length: 12 }, (_, i) => i) });
    const idx = g.upload({ shape: [2, 1, 2], data: Int32Array.from([3, 0, 3, 1]) });
    const out = embedding(g, idx, w);
    expect(out.shape).toEqual([2, 1, 2, 3]);
    expect([...(await g.read(out))]).toEqual([9, 10, 11, 0, 1, 2, 9, 10, 11, 3, 4, 5]);
    g.release(w, idx, out);
  });

  it('refuses mismatched shapes with clear messages', () => {
    const [idx, w, flat, dout, d, out6] = [g.tensor([2, 3], 'i32'), g.tensor([5, 4]), g.tensor([20]), g.tensor([2, 4, 4]), g.tensor([2, 3, 4]), g.tensor([6, 4])];
    expect(() => embedding(g, idx, flat)).toThrow(/embedding: weight must be 2-D \(V, C\), got shape \(20\)/);
    expect(() => embedding(g, w, w)).toThrow(/embedding: idx must be an i32 tensor, got f32/);
    expect(() => embeddingBackward(g, idx, dout, 5)).toThrow(/dout has shape \(2, 4, 4\) but idx is \(2, 3\)/);
    expect(() => embeddingBackward(g, idx, d, 5, { accumulate: true })).toThrow(/accumulate needs an existing grad tensor/);
    expect(() => embeddingBackward(g, idx, d, 5, { out: out6 })).toThrow(/out has shape \(6, 4\), expected \(5, 4\)/);
    expect(() => embeddingBackward(g, idx, d, 5, { paddingIdx: 5 })).toThrow(/padding_idx 5 must be an integer in \[-5, 5\)/);
    g.release(idx, w, flat, dout, d, out6);
  });

  it('refuses out-of-range indices before the GPU, naming the first one and where it is', async () => {
    const weight = { shape: [6, 2], data: new Float32Array(12) };
    const bad = { shape: [2, 3], data: Int32Array.from([0, 5, 1, 2, 6, -1]) };
    await expect(runOp(g, 'embedding', { input: bad, weight })).rejects.toThrow(
      /embedding: index 6 at idx\[1, 1\] is out of range for a weight of 6 rows \(indices must be in \[0, 6\)\)/,
    );
    const neg = { shape: [3], data: Int32Array.from([0, -2, 1]) };
    await expect(runOp(g, 'embedding', { idx: neg, weight })).rejects.toThrow(/index -2 at idx\[1\]/);
    await expect(runOp(g, 'embedding', { idx: neg, weight }, { padding_idx: 1.5 })).rejects.toThrow(/padding_idx 1.5 must be an integer/);
    await expect(runOp(g, 'embedding', { idx: neg, weight: { shape: [12], data: new Float32Array(12) } })).rejects.toThrow(/weight must be 2-D/);
  });
});
