// matmul in headless Chromium (WebGPU), forward and backward, against the float64 reference, on fresh random
// inputs with NaN-poisoned outputs; then every kernel variant and the API other ops use (accumulate, sumBatch,
// sumRows, errors) through Dawn in Node, so variants the adapter would not pick here are checked too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpHost } from '../../client/host/op-host.ts';
import { openNodeGpu } from '../../client/host/node-gpu.ts';
import { forceMatmulVariant, matmul, regVariant, sumRows, tiledVariant, type MatmulVariant } from '../../client/ops/matmul.ts';
import { checkOp } from '../../client/runner.ts';
import type { Gpu } from '../../client/runtime/gpu.ts';
import { relError } from '../../shared/ops.ts';
import { matmulForward, matmulShape } from '../../shared/reference/matmul.ts';
import { freshSeed, Rng } from '../../shared/rng.ts';
import { casesOf, check, openHarness } from './page.ts';

let host: OpHost;
beforeAll(async () => {
  host = await openHarness();
});
afterAll(() => host?.close());

describe('matmul', () => {
  it.each(casesOf('matmul'))('%s', async (c) => {
    const r = await check(host, 'matmul', c);
    expect(Object.keys(r.errors)).toContain('grad_b');
    expect(r.ok).toBe(true);
  });
});

// every kernel, odd workgroup shapes, and split-K (3 or 5 ways: K ranges of 16, the last one shorter)
const VARIANTS: MatmulVariant[] = [
  regVariant(8, 8),
  regVariant(2, 4, 3),
  tiledVariant(16, 16, 4, 4, 16),
  tiledVariant(16, 16, 8, 4, 16, 5),
  tiledVariant(8, 4, 2, 8, 4),
];
const VARIANT_CASES = casesOf('matmul').filter((c) => !c.startsWith('large') && !c.startsWith('skinny'));

describe('matmul through Dawn in Node', () => {
  let g: Gpu;
  beforeAll(async () => {
    g = await openNodeGpu();
  });
  afterAll(() => {
    forceMatmulVariant(null);
    g?.destroy();
  });

  describe.each(VARIANTS.map((v) => [`${v.kernel} ${JSON.stringify(v.constants)}`, v] as const))('variant %s', (_name, v) => {
    it.each(VARIANT_CASES)('%s', async (c) => {
      forceMatmulVariant(() => v);
      try {
        const seed = freshSeed();
        const r = await checkOp(g, 'matmul', c, seed);
        if (!r.ok) console.error(`matmul / ${c} with ${v.kernel} failed with seed ${seed}:`, r.errors);
        expect(r.ok).toBe(true);
      } finally {
        forceMatmulVariant(null);
      }
    });
  });

  it.each([
    ['the chosen variant', null],
    ['split-K', regVariant(8, 8, 3)],
  ] as const)('accumulates into out and sums a shared operand\'s grad over the batch (%s)', async (_name, v) => {
    const rng = new Rng(freshSeed());
    const [B, M, K, N] = [3, 40, 6, 5];
    const a = { shape: [B, M, K], data: rng.floats(B * M * K) };
    const d = { shape: [B, M, N], data: rng.floats(B * M * N) };
    const prev = { shape: [K, N], data: rng.floats(K * N) };
    // want = prev + Σ_z a_zᵀ @ d_z (a reduction over B*M = 120 rows: split 3 ways when forced)
    const want = Float64Array.from(prev.data);
    for (let z = 0; z < B; z++) {
      const part = new Float64Array(K * N);
      const az = Float64Array.from(a.data.subarray(z * M * K, (z + 1) * M * K));
      matmulForward(part, az, Float64Array.from(d.data.subarray(z * M * N, (z + 1) * M * N)), null, matmulShape([M, K], [M, N], true, false), true, false);
      part.forEach((x, i) => (want[i] += x));
    }
    const out = g.upload(prev);
    const ga = g.upload(a);
    const gd = g.upload(d);
    forceMatmulVariant(v ? () => v : null);
    try {
      matmul(g, ga, gd, { transA: true, sumBatch: true, out, accumulate: true });
    } finally {
      forceMatmulVariant(null);
    }
    const got = await g.read(out);
    expect(relError(got, want)).toBeLessThan(1e-5);
    // sumRows with accumulate: bias grads
    const sums = g.upload({ shape: [N], data: new Float32Array(N).fill(1) });
    sumRows(g, gd, B * M, N, { out: sums, accumulate: true });
    const gs = await g.read(sums);
    const ws = new Float64Array(N).fill(1);
    for (let r = 0; r < B * M; r++) for (let n = 0; n < N; n++) ws[n] += d.data[r * N + n];
    expect(relError(gs, ws)).toBeLessThan(1e-5);
    g.release(out, ga, gd, sums);
  });

  it('throws clear errors for bad shapes and options', () => {
    const t = (shape: number[]) => g.tensor(shape);
    const x = t([3, 5]);
    const y = t([4, 6]);
    expect(() => matmul(g, x, y)).toThrow('matmul: a is (3, 5) but b is (4, 6): inner sizes 5 and 4 differ');
    expect(() => matmul(g, x, t([6, 4]), { transB: true })).toThrow('inner sizes 5 and 4 differ');
    expect(() => matmul(g, t([2, 3, 5]), t([3, 5, 4]))).toThrow('batch dims (2) and (3) differ');
    expect(() => matmul(g, t([5]), t([5, 4]))).toThrow('must have at least 2 dims');
    expect(() => matmul(g, x, t([5, 4]), { bias: t([5]) })).toThrow('bias is (5) but must be (4,)');
    expect(() => matmul(g, x, t([5, 4]), { accumulate: true })).toThrow('accumulate needs an out tensor');
    expect(() => matmul(g, x, t([5, 4]), { out: t([3, 5]) })).toThrow('out is (3, 5) but the result is (3, 4)');
    expect(() => sumRows(g, x, 4, 5)).toThrow('sumRows: x is (3, 5), not 4 rows of 5');
  });
});
