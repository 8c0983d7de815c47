// Token dataset and sampler: a batch is a pure function of (seed, split, index, B, T), reproducible from fresh
// objects and either token array type; targets are the inputs shifted by one; windows never cross the split;
// evaluation batches are fixed and span the validation split; sizes that do not fit fail with a clear message.
import { describe, expect, it } from 'vitest';
import { batchSeed, encodeCorpus, TokenDataset, unigramEntropy, type Split } from '../../shared/data/dataset.ts';
import { freshSeed, Rng } from '../../shared/rng.ts';

const V = 50;
function randomTokens(seed: number, n: number): Int32Array {
  return new Rng(seed).ints(n, V);
}

describe('token dataset', () => {
  it('splits off the last 10% (rounded down) as validation', () => {
    expect(new TokenDataset(new Int32Array(1000), V).range('val')).toEqual([900, 1000]);
    expect(new TokenDataset(new Int32Array(1009), V).range('train')).toEqual([0, 909]);
    expect(new TokenDataset(new Int32Array(30), V).splitAt).toBe(27);
    const ds = new TokenDataset(new Int32Array(100), V, 0.25);
    expect([ds.split('train').length, ds.split('val').length]).toEqual([75, 25]);
  });

  it('reproduces a batch from (seed, index) alone, across fresh objects and token array types', () => {
    const seed = freshSeed();
    const tokens = randomTokens(seed, 10_000);
    for (const split of ['train', 'val'] as Split[]) {
      for (const index of [0, 1, 7, 123_456, 2 ** 40 + 3]) {
        const a = new TokenDataset(tokens, V).batch(split, seed, index, 4, 16);
        const b = new TokenDataset(Uint16Array.from(tokens), V).batch(split, seed, index, 4, 16);
        expect(b.idx, `seed ${seed}`).toEqual(a.idx);
        expect(b.targets).toEqual(a.targets);
        expect(b.offsets).toEqual(a.offsets);
        expect(a.idx.length).toBe(4 * 16);
      }
    }
  });

  it('pins the batch seed (changing it breaks every batch a swarm has handed out)', () => {
    expect([batchSeed(0, 'train', 0), batchSeed(1, 'train', 0), batchSeed(1, 'val', 0), batchSeed(1, 'train', 1), batchSeed(1, 'train', 2 ** 32)])
      .toMatchInlineSnapshot(`
        [
          3903316285,
          1735199932,
          903788413,
          2050441128,
          1882083616,
        ]
      `);
  });

  it('gives targets that are the inputs shifted by one, all in range', () => {
    const seed = freshSeed();
    const tokens = randomTokens(seed, 5000);
    const ds = new TokenDataset(tokens, V);
    const { idx, targets, offsets, B, T } = ds.batch('train', seed, 3, 8, 33);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        expect(idx[b * T + t]).toBe(tokens[offsets[b] + t]);
        expect(targets[b * T + t]).toBe(tokens[offsets[b] + t + 1]);
        if (t < T - 1) expect(targets[b * T + t]).toBe(idx[b * T + t + 1]);
      }
    }
    for (const v of [...idx, ...targets]) expect(v >= 0 && v < V).toBe(true);
  });

  it('gives different batches for different indices, seeds and splits', () => {
    const seed = freshSeed();
    const ds = new TokenDataset(randomTokens(seed, 100_000), V);
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(ds.batch('train', seed, i, 4, 8).offsets.join());
    expect(seen.size, `seed ${seed}`).toBe(200);
    const other = (seed + 1) >>> 0;
    expect(ds.batch('train', other, 0, 4, 8).offsets).not.toEqual(ds.batch('train', seed, 0, 4, 8).offsets);
    expect(batchSeed(seed, 'val', 5)).not.toBe(batchSeed(seed, 'train', 5));
  });

  it('keeps every window inside its split, hitting both ends', () => {
    const seed = freshSeed();
    const N = 200;
    const ds = new TokenDataset(randomTokens(seed, N), V); // train [0, 180), val [180, 200)
    const T = 8;
    for (const split of ['train', 'val'] as Split[]) {
      const [lo, hi] = ds.range(split);
      let first = Infinity;
      let last = -Infinity;
      for (let i = 0; i < 400; i++) {
        for (const o of ds.batch(split, seed, i, 16, T).offsets) {
          expect(o).toBeGreaterThanOrEqual(lo);
          expect(o + T + 1, `seed ${seed}: a ${split} window reads past ${hi}`).toBeLessThanOrEqual(hi);
          first = Math.min(first, o);
          last = Math.max(last, o);
        }
      }
      expect([first, last], `seed ${seed}`).toEqual([lo, hi - T - 1]);
    }
  });

  it('has fixed evaluation batches that span the validation split', () => {
    const seed = freshSeed();
    const ds = new TokenDataset(randomTokens(seed, 1000), V); // val = [900, 1000)
    const T = 10;
    const evals = ds.evalBatches(3, 4, T);
    expect(new TokenDataset(randomTokens(seed, 1000), V).evalBatches(3, 4, T)).toEqual(evals);
    const offsets = evals.flatMap((b) => [...b.offsets]);
    expect(offsets[0]).toBe(900);
    expect(offsets.at(-1)! + T + 1).toBe(1000);
    for (let i = 1; i < offsets.length; i++) expect(offsets[i]).toBeGreaterThan(offsets[i - 1]);
    // n·B·T ≥ the split's length → every validation token is read as an input or a target
    const covered = new Uint8Array(1000);
    for (const o of offsets) covered.fill(1, o, o + T + 1);
    expect(covered.subarray(900).every((c) => c === 1)).toBe(true);
    expect(ds.evalBatch(1, 3, 4, T)).toEqual(evals[1]);
    expect(ds.evalBatches(1, 1, T)[0].offsets[0]).toBe(900);
  });

  it('says clearly when a window does not fit or an argument is wrong', () => {
    const ds = new TokenDataset(new Int32Array(100), V); // train 90, val 10
    expect(ds.batch('val', 0, 0, 1, 9).offsets[0]).toBe(90);
    expect(() => ds.batch('val', 0, 0, 1, 10)).toThrow(/T \+ 1 = 11 tokens do not fit in the val split of 10 tokens.*T ≤ 9/);
    expect(() => ds.batch('train', 0, 0, 1, 90)).toThrow(/T \+ 1 = 91 tokens do not fit in the train split of 90 tokens/);
    expect(() => ds.evalBatches(2, 2, 10)).toThrow(/val split of 10 tokens/);
    expect(() => ds.batch('train', 0, 0, 0, 4)).toThrow(/B must be a positive integer, got 0/);
    expect(() => ds.batch('train', 0, 0, 2, 1.5)).toThrow(/T must be a positive integer/);
    expect(() => ds.batch('train', -1, 0, 2, 4)).toThrow(/seed must be an integer in \[0, 2\^32\)/);
    expect(() => ds.batch('train', 0, -1, 2, 4)).toThrow(/batch index must be a non-negative safe integer/);
    expect(() => ds.batch('test' as Split, 0, 0, 2, 4)).toThrow(/unknown split "test"/);
    expect(() => ds.evalBatch(3, 3, 1, 4)).toThrow(/eval batch index must be an integer in \[0, 3\)/);
    expect(() => new TokenDataset(Int32Array.of(1, 2, 50), V)).toThrow(/token 50 at position 2 is outside the vocabulary \[0, 50\)/);
    expect(() => new TokenDataset(new Int32Array(10), V, 1)).toThrow(/valFraction/);
  });

  it('encodes a corpus and measures its unigram entropy', () => {
    const { tokenizer, dataset } = encodeCorpus('abab'.repeat(50));
    expect(tokenizer.vocab).toEqual(['a', 'b']);
    expect(dataset.length).toBe(200);
    expect(unigramEntropy(dataset.tokens, 2)).toBeCloseTo(Math.log(2), 12);
    expect(unigramEntropy(new Int32Array(10), 3)).toBe(0);
  });
});
