// The pieces of the op contract every family relies on: the error metric, option and input resolution,
// and the buffer pool's size classes.
import { describe, expect, it } from 'vitest';
import { BufferPool } from '../../client/runtime/pool.ts';
import { optionsFromMetadata } from '../../coordinator/cli/op.ts';
import { canonicalInputs, relError, resolveOptions, type OpSpec } from '../../shared/ops.ts';
import { elementwiseOps } from '../../shared/reference/elementwise.ts';

const add = elementwiseOps.find((s) => s.name === 'add') as OpSpec;

describe('relError', () => {
  it('is the max abs difference over the max abs reference', () => {
    expect(relError([1, 2.5, -4], [1, 2, -4])).toBeCloseTo(0.5 / 4, 12);
    expect(relError([0, 0], [0, 0])).toBe(0);
  });
  it('fails on NaN (an unwritten, poisoned element) and on length mismatch', () => {
    expect(relError([1, NaN, 3], [1, 2, 3])).toBe(Infinity);
    expect(relError([1, 2], [1, 2, 3])).toBe(Infinity);
  });
});

describe('op inputs and options', () => {
  it('accepts PyTorch argument names as aliases', () => {
    const t = { shape: [2], data: new Float32Array(2) };
    const r = canonicalInputs(add, { x: t, other: t });
    expect(Object.keys(r).sort()).toEqual(['input', 'other']);
  });
  it('names a missing input and its aliases', () => {
    const t = { shape: [2], data: new Float32Array(2) };
    expect(() => canonicalInputs(add, { input: t })).toThrow(/add: missing input 'other' \(or 'y', 'b'\)/);
  });
  it('refuses integer data where floats are expected', () => {
    const i = { shape: [2], data: new Int32Array(2) };
    expect(() => canonicalInputs(add, { input: i, other: i })).toThrow(/must be a float tensor/);
  });
  it('rejects unknown options by name', () => {
    expect(() => resolveOptions(add, { alpha: 2 })).toThrow(/add: unknown option 'alpha' \(it takes none\)/);
  });
  it('parses __metadata__ options as JSON and says which one is not', () => {
    expect(optionsFromMetadata({ eps: '1e-5', betas: '[0.9, 0.95]', is_causal: 'true', note: 'x' }, ['eps', 'betas', 'is_causal'])).toEqual({
      eps: 1e-5,
      betas: [0.9, 0.95],
      is_causal: true,
    });
    expect(() => optionsFromMetadata({ eps: 'tiny' }, ['eps'])).toThrow(/option 'eps' in __metadata__ is not JSON/);
    expect(() => optionsFromMetadata({ epsilon: '1' }, ['eps'])).toThrow(/unknown option 'epsilon' in __metadata__ \(this op takes: eps\)/);
  });
});

describe('BufferPool.sizeClass', () => {
  it('never gives less than asked, and at most 12.5% more above 2 KiB', () => {
    for (const n of [1, 255, 256, 257, 1000, 4096, 4097, 12345, 1 << 20, (1 << 20) + 1, 7_777_777]) {
      const c = BufferPool.sizeClass(n);
      expect(c).toBeGreaterThanOrEqual(n);
      expect(c % 4).toBe(0);
      if (n > 2048) expect(c / n).toBeLessThanOrEqual(1.125);
    }
  });
});

describe('BufferPool.acquire', () => {
  it('asks for the exact size when the size class would pass the device limit', () => {
    const sizes: number[] = [];
    const device = { createBuffer: (d: { size: number }) => (sizes.push(d.size), { size: d.size }) } as unknown as GPUDevice;
    const limit = 2 ** 31 - 4; // a limit that is not a power of two, as some adapters report
    const pool = new BufferPool(device, 0, limit);
    pool.acquire(2 ** 31 - 100);
    pool.acquire(3000);
    expect(sizes).toEqual([2 ** 31 - 100, BufferPool.sizeClass(3000)]);
  });
});
