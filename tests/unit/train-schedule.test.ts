// nanoGPT's learning-rate schedule (shared/train/schedule.ts) against its formula at the points that define it,
// and the optimizer config's defaults and validation.
import { describe, expect, it } from 'vitest';
import { learningRate, OPTIM_DEFAULTS, parseOptimConfig } from '../../shared/train/schedule.ts';

const c = { lr: 1e-3, min_lr: 1e-4, warmup_iters: 10, lr_decay_iters: 110 };

describe('learning-rate schedule', () => {
  it('warms up linearly: lr·(it+1)/(warmup+1), reaching lr at the end of warmup', () => {
    expect(learningRate(0, c)).toBeCloseTo(1e-3 / 11, 15);
    expect(learningRate(4, c)).toBeCloseTo((1e-3 * 5) / 11, 15);
    expect(learningRate(9, c)).toBeCloseTo((1e-3 * 10) / 11, 15);
    expect(learningRate(10, c)).toBe(1e-3); // cosine at ratio 0
  });

  it('decays by a cosine to min_lr, then stays there', () => {
    // mid-cosine: ratio ½ → coefficient ½, halfway between lr and min_lr
    expect(learningRate(60, c)).toBeCloseTo((1e-3 + 1e-4) / 2, 15);
    // ratio ¼: ½(1 + cos(π/4))
    expect(learningRate(35, c)).toBeCloseTo(1e-4 + 0.5 * (1 + Math.SQRT1_2) * 9e-4, 15);
    expect(learningRate(110, c)).toBe(1e-4);
    expect(learningRate(111, c)).toBe(1e-4);
    expect(learningRate(100_000, c)).toBe(1e-4);
  });

  it('rises through warmup and never rises after it', () => {
    const lrs = Array.from({ length: 130 }, (_, it) => learningRate(it, c));
    for (let it = 1; it <= 10; it++) expect(lrs[it]).toBeGreaterThan(lrs[it - 1]);
    for (let it = 11; it < lrs.length; it++) expect(lrs[it]).toBeLessThanOrEqual(lrs[it - 1]);
    expect(Math.max(...lrs)).toBe(1e-3);
    expect(Math.min(...lrs.slice(10))).toBe(1e-4);
  });

  it('handles no warmup and a zero-length cosine', () => {
    expect(learningRate(0, { ...c, warmup_iters: 0 })).toBe(1e-3);
    expect(learningRate(9, { ...c, lr_decay_iters: 10 })).toBeCloseTo(1e-3 * 10 / 11, 15);
    expect(learningRate(10, { ...c, lr_decay_iters: 10 })).toBe(1e-4);
    expect(() => learningRate(-1, c)).toThrow(/iteration -1 must be an integer >= 0/);
  });
});

describe('optimizer config', () => {
  it('fills defaults (nanoGPT: weight decay 0.1, clip 1.0) and keeps overrides', () => {
    expect(parseOptimConfig({})).toEqual(OPTIM_DEFAULTS);
    expect(OPTIM_DEFAULTS.weight_decay).toBe(0.1);
    expect(OPTIM_DEFAULTS.grad_clip).toBe(1);
    const o = parseOptimConfig({ lr: 3e-4, betas: [0.9, 0.95], grad_accum_steps: 4 });
    expect(o).toEqual({ ...OPTIM_DEFAULTS, lr: 3e-4, betas: [0.9, 0.95], grad_accum_steps: 4 });
  });

  it('lists every problem in one error', () => {
    let msg = '';
    try {
      parseOptimConfig({ lr: -1, beta2: 0.9, betas: [0.9, 1], grad_accum_steps: 1.5, min_lr: 'x', warmup_iters: 50, lr_decay_iters: 20 });
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/^optimizer config: /);
    expect(msg).toMatch(/beta2: unknown key/);
    expect(msg).toMatch(/lr: must be a number > 0, got -1/);
    expect(msg).toMatch(/min_lr: must be a number >= 0, got "x"/);
    expect(msg).toMatch(/betas: must be a pair \[beta1, beta2\], each in \[0, 1\), got \[0.9,1\]/);
    expect(msg).toMatch(/grad_accum_steps: must be an integer >= 1, got 1.5/);
    expect(msg).toMatch(/lr_decay_iters: 20 is before warmup_iters 50/);
    expect(() => parseOptimConfig({ lr: 1e-4, min_lr: 1e-3 })).toThrow(/min_lr: 0.001 exceeds lr 0.0001/);
    expect(() => parseOptimConfig([])).toThrow(/must be a JSON object/);
  });
});
