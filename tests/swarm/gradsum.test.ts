// A run's SIMD gradient sum (coordinator/swarm/gradsum.ts) against its scalar references: float32 adds bit
// for bit, Σ g² to rounding and non-finite exactly where an element is, at odd sizes around the staging block; and
// the committed wasm bytes are those of the committed .wat.
import { describe, expect, it } from 'vitest';
import { assembleWat, KERNELS, wasmModule } from '../../shared/assemble-wasm.mjs';
import { GRADSUM_WASM } from '../../coordinator/swarm/gradsum-wasm.ts';
import { GradSum } from '../../coordinator/swarm/gradsum.ts';
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

describe(`GradSum (seed ${seed})`, () => {
  it('adds gradients bit for bit as the scalar loop does, at odd sizes and block edges', () => {
    for (const n of SIZES) {
      const gs = new GradSum(n);
      expect(gs.sum.every((x) => x === 0)).toBe(true);
      const ref = new Float32Array(n);
      for (let k = 0; k < 3; k++) {
        const g = gradient(n);
        gs.add(g);
        addReference(ref, g);
      }
      const got = new Uint32Array(gs.sum.buffer, gs.sum.byteOffset, n);
      const want = new Uint32Array(ref.buffer);
      let bad = -1;
      for (let i = 0; i < n && bad < 0; i++) if (got[i] !== want[i]) bad = i;
      expect(bad, `n = ${n}: first differing element ${bad}: ${gs.sum[bad]} vs ${ref[bad]}`).toBe(-1);
    }
  });

  it('adds a gradient that is a view at an offset of a larger buffer', () => {
    const n = BLOCK + 5;
    const g = gradient(n + 3).subarray(3);
    const gs = new GradSum(n);
    gs.add(g);
    const ref = new Float32Array(n);
    addReference(ref, g);
    expect(Array.from(gs.sum)).toEqual(Array.from(ref));
  });

  it('computes Σ g² to rounding, of any array and of the sum in place', () => {
    for (const n of SIZES) {
      const gs = new GradSum(n);
      const g = gradient(n);
      const want = sumOfSquares(g);
      expect(Math.abs(gs.sumOfSquares(g) - want), `n = ${n}`).toBeLessThanOrEqual(1e-12 * want + 1e-300);
      gs.add(g);
      const inPlace = sumOfSquares(gs.sum);
      expect(Math.abs(gs.sumOfSquares(gs.sum) - inPlace), `n = ${n}, in place`).toBeLessThanOrEqual(1e-12 * inPlace + 1e-300);
      const h = gradient(n + 11); // another length than the sum's
      expect(Math.abs(gs.sumOfSquares(h) - sumOfSquares(h))).toBeLessThanOrEqual(1e-12 * sumOfSquares(h) + 1e-300);
    }
  });

  it('Σ g² is non-finite exactly when an element is, wherever it stands; float32 extremes stay finite', () => {
    const n = 2 * BLOCK + 13;
    const gs = new GradSum(n);
    const places = [0, 5, 7, 8, BLOCK - 1, BLOCK, n - 13, n - 1, rng.int(n)];
    for (const at of places) {
      for (const bad of [NaN, Infinity, -Infinity]) {
        const g = gradient(n);
        g[at] = bad;
        const s = gs.sumOfSquares(g);
        if (Number.isNaN(bad)) expect(s, `NaN at ${at}`).toBeNaN();
        else expect(s, `${bad} at ${at}`).toBe(Infinity);
      }
    }
    const g = new Float32Array(n).fill(3.4e38);
    expect(gs.sumOfSquares(g) / (n * 3.4e38 * 3.4e38)).toBeCloseTo(1, 6);
    expect(gs.sumOfSquares(new Float32Array(0))).toBe(0);
  });

  it('refuses a gradient of another length; its sum stays where it was; two sums share nothing', () => {
    const gs = new GradSum(101);
    expect(() => gs.add(new Float32Array(100))).toThrow(/100 elements to a sum of 101/);
    const view = gs.sum;
    for (let k = 0; k < 20; k++) gs.add(gradient(101));
    expect(gs.sum).toBe(view);
    expect(view.byteLength).toBe(404); // not detached
    const other = new GradSum(101);
    other.add(new Float32Array(101).fill(1));
    expect(Array.from(gs.sum)).toEqual(Array.from(view));
    expect(other.sum.every((x) => x === 1)).toBe(true);
  });

  it('loads the bytes shared/assemble-wasm.mjs makes of gradsum.wat (run it after editing the .wat)', async () => {
    const kernel = KERNELS.find((k) => k.name === 'GRADSUM_WASM')!;
    const bytes = await assembleWat(kernel.wat);
    const committed = readFileSync(new URL(`../../${kernel.out}`, import.meta.url), 'utf8');
    expect(committed).toBe(wasmModule(kernel, bytes));
    expect(Buffer.from(GRADSUM_WASM, 'base64').equals(Buffer.from(bytes))).toBe(true);
  });
});
