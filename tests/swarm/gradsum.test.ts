// The coordinator's SIMD passes over gradients (coordinator/swarm/gradsum.ts) against its scalar references: float32 adds bit
// for bit, Σ g² to rounding and non-finite exactly where an element is, at odd sizes around the staging block; and
// the committed wasm bytes are those of the committed .wat.
import { describe, expect, it } from 'vitest';
import { assembleGradsum, gradsumModule } from '../../coordinator/swarm/assemble-gradsum.mjs';
import { GRADSUM_WASM } from '../../coordinator/swarm/gradsum-wasm.ts';
import { addInto, sumOfSquares as simdSumOfSquares } from '../../coordinator/swarm/gradsum.ts';
import { sumOfSquares } from '../../coordinator/swarm/robust.ts';
import { Rng, freshSeed } from '../../shared/rng.ts';
import { readFileSync } from 'node:fs';

const seed = freshSeed();
const rng = new Rng(seed);
const BLOCK = 1 << 16;
/** odd sizes, and the edges of the 8-wide loop and of the staging block */
const SIZES = [1, 3, 7, 8, 9, 17, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + 13, 300_007];

/** values of every kind a gradient holds: normal across magnitudes, ±0, subnormal */
function gradient(n: number): Float32Array<ArrayBuffer> {
  const g = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = rng.next();
    g[i] = u < 0.02 ? (u < 0.01 ? 0 : -0) : u < 0.04 ? rng.uniform() * 1e-40 : rng.normal() * 10 ** Math.floor(rng.next() * 12 - 8);
  }
  return g;
}

/** the scalar reference: sum[i] = fround(sum[i] + g[i]) */
function addReference(sum: Float32Array, g: Float32Array): void {
  for (let i = 0; i < sum.length; i++) sum[i] += g[i];
}

describe(`gradsum (seed ${seed})`, () => {
  it('adds gradients bit for bit as the scalar loop does, at odd sizes and block edges', () => {
    for (const n of SIZES) {
      const sum = new Float32Array(n);
      const ref = new Float32Array(n);
      for (let k = 0; k < 3; k++) {
        const g = gradient(n);
        addInto(sum, g);
        addReference(ref, g);
      }
      const got = new Uint32Array(sum.buffer);
      const want = new Uint32Array(ref.buffer);
      let bad = -1;
      for (let i = 0; i < n && bad < 0; i++) if (got[i] !== want[i]) bad = i;
      expect(bad, `n = ${n}: first differing element ${bad}: ${sum[bad]} vs ${ref[bad]}`).toBe(-1);
    }
  });

  it('adds views at offsets of larger buffers, and writes nothing outside the sum', () => {
    const n = BLOCK + 5;
    const big = gradient(n + 3);
    const g = big.subarray(3);
    const outer = new Float32Array(n + 4).fill(-7);
    const sum = outer.subarray(2, n + 2);
    sum.fill(0);
    addInto(sum, g);
    const ref = new Float32Array(n);
    addReference(ref, g);
    expect(Array.from(sum)).toEqual(Array.from(ref));
    expect([outer[0], outer[1], outer[n + 2], outer[n + 3]]).toEqual([-7, -7, -7, -7]);
  });

  it('computes Σ g² to rounding at odd sizes and block edges', () => {
    for (const n of SIZES) {
      const g = gradient(n);
      const want = sumOfSquares(g);
      expect(Math.abs(simdSumOfSquares(g) - want), `n = ${n}`).toBeLessThanOrEqual(1e-12 * want + 1e-300);
    }
  });

  it('Σ g² is non-finite exactly when an element is, wherever it stands; float32 extremes stay finite', () => {
    const n = 2 * BLOCK + 13;
    const places = [0, 5, 7, 8, BLOCK - 1, BLOCK, n - 13, n - 1, rng.int(n)];
    for (const at of places) {
      for (const bad of [NaN, Infinity, -Infinity]) {
        const g = gradient(n);
        g[at] = bad;
        const s = simdSumOfSquares(g);
        if (Number.isNaN(bad)) expect(s, `NaN at ${at}`).toBeNaN();
        else expect(s, `${bad} at ${at}`).toBe(Infinity);
      }
    }
    const g = new Float32Array(n).fill(3.4e38);
    expect(simdSumOfSquares(g) / (n * 3.4e38 * 3.4e38)).toBeCloseTo(1, 6);
    expect(simdSumOfSquares(new Float32Array(0))).toBe(0);
  });

  it('refuses a gradient of another length', () => {
    expect(() => addInto(new Float32Array(101), new Float32Array(100))).toThrow(/100 elements to a sum of 101/);
  });

  it('loads the bytes assemble-gradsum.mjs makes of gradsum.wat (run it after editing the .wat)', async () => {
    const bytes = await assembleGradsum();
    const committed = readFileSync(new URL('../../coordinator/swarm/gradsum-wasm.ts', import.meta.url), 'utf8');
    expect(committed).toBe(gradsumModule(bytes));
    expect(Buffer.from(GRADSUM_WASM, 'base64').equals(Buffer.from(bytes))).toBe(true);
  });
});
