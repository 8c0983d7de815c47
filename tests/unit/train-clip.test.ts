// Gradient clipping by global norm (shared/train/clip.ts) against torch.nn.utils.clip_grad_norm_'s formula.
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../shared/models/config.ts';
import { paramLayout } from '../../shared/models/layout.ts';
import { freshSeed, Rng } from '../../shared/rng.ts';
import { clipGrads, clipScale, describeNonFinite, gradNorm } from '../../shared/train/clip.ts';

describe('gradient clipping', () => {
  it('computes the global L2 norm with float64 accumulation', () => {
    expect(gradNorm(new Float32Array([3, 4]))).toBe(5);
    expect(gradNorm(new Float32Array(0))).toBe(0);
    // 2^22 elements of 1e-3: an fp32 running sum of squares would be off by percents; float64 by < n·2^-53
    const n = 1 << 22;
    const v = Math.fround(1e-3);
    expect(Math.abs(gradNorm(new Float32Array(n).fill(v)) / (v * Math.sqrt(n)) - 1)).toBeLessThan(1e-9);
  });

  it('scales by min(1, max_norm / (norm + 1e-6)), as torch', () => {
    const seed = freshSeed();
    const g = new Rng(seed).normals(1000, 0.5); // norm ≈ 15.8
    const norm = gradNorm(g);
    const r = clipGrads(g, 1);
    expect(r.norm, `seed ${seed}`).toBe(norm);
    expect(r.scale).toBe(1 / (norm + 1e-6));
    expect(r.gradScale).toBe(r.scale);
    expect(r.finite).toBe(true);
    expect(clipGrads(g, 100).scale).toBe(1); // below the threshold: untouched
    expect(clipGrads(g, 0).scale).toBe(1); // 0: clipping off, the norm is still reported
    expect(clipGrads(g, 0).norm).toBe(norm);
    expect(clipScale(0, 1)).toBe(1);
  });

  it('clips the mean of accumulated gradients and folds the averaging into gradScale', () => {
    const g = new Float32Array([6, 8]); // the sum of 4 micro-steps: mean (1.5, 2), norm 2.5
    const r = clipGrads(g, 1, 4);
    expect(r.norm).toBe(2.5);
    expect(r.scale).toBe(1 / (2.5 + 1e-6));
    expect(r.gradScale).toBe(r.scale / 4);
    expect(clipGrads(g, 10, 4)).toEqual({ norm: 2.5, scale: 1, gradScale: 0.25, finite: true });
  });

  it('reports a non-finite gradient instead of a scale, naming the tensors', () => {
    const layout = paramLayout(parseModelConfig({ model: 'gru', vocab_size: 5, embed_size: 3, hidden_size: 4, num_layers: 1 }));
    const g = new Float32Array(layout.size);
    const r0 = clipGrads(g, 1);
    expect(r0.finite).toBe(true);
    expect(describeNonFinite(g, layout)).toMatch(/finite in every tensor/);
    layout.view(g, 'rnn.weight_hh_l0')[3] = NaN;
    layout.view(g, 'head.bias')[1] = Infinity;
    layout.view(g, 'head.bias')[2] = -Infinity;
    const r = clipGrads(g, 1);
    expect(r.finite).toBe(false);
    expect(r.norm).toBeNaN();
    expect(r.scale).toBeNaN();
    expect(r.gradScale).toBeNaN();
    expect(clipGrads(new Float32Array([1, Infinity]), 1)).toMatchObject({ norm: Infinity, finite: false });
    expect(describeNonFinite(g, layout)).toBe('gradient is not finite in rnn.weight_hh_l0 (1 NaN), head.bias (2 Inf)');
    expect(() => clipGrads(g, -1)).toThrow(/max norm -1 must be >= 0/);
    expect(() => clipGrads(g, 1, 0)).toThrow(/accumulation steps 0/);
  });
});
