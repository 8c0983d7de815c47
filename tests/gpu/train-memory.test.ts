// GPU memory of training steps (Node, Dawn): the trainer's own pieces (createModel, accumulateGrads, clipGrads,
// applyGrads, GpuAdamW) on fresh random configs and batches. Steps after the first reuse every pooled buffer
// (BufferPool.allocatedBytes does not grow from step 2 to step N), and the estimate of shared/models/memory.ts
// matches the measurement: weights, grads and optimizer state exactly, the whole within 10%.
import { afterEach, describe, expect, it } from 'vitest';
import { openNodeGpu } from '../../client/host/node-gpu.ts';
import type { Gpu } from '../../client/runtime/gpu.ts';
import { GpuAdamW } from '../../client/train/optimizer.ts';
import { accumulateGrads, applyGrads, createModel } from '../../client/train/trainer.ts';
import { parseModelConfig, type ModelConfig } from '../../shared/models/config.ts';
import { initParams } from '../../shared/models/init.ts';
import { estimateStepMemory } from '../../shared/models/memory.ts';
import { freshSeed, Rng } from '../../shared/rng.ts';
import { clipGrads } from '../../shared/train/clip.ts';
import { parseOptimConfig } from '../../shared/train/schedule.ts';
import { randomBatch } from './model-batch.ts';

let g: Gpu | undefined;
afterEach(() => {
  g?.destroy();
  g = undefined;
});

const STEPS = 4;
const EST_TOL = 0.1;

function randomConfig(rng: Rng, model: 'gpt' | 'lstm' | 'gru'): ModelConfig {
  const V = 20 + rng.int(80);
  if (model === 'gpt') return parseModelConfig({ model, vocab_size: V, block_size: 24, n_layer: 1 + rng.int(2), n_head: 2, n_embd: 2 * (4 + rng.int(20)) });
  return parseModelConfig({ model, vocab_size: V, embed_size: 4 + rng.int(20), hidden_size: 16 + rng.int(80), num_layers: 1 + rng.int(2) });
}

describe('training step memory', () => {
  it.each(['gpt', 'lstm', 'gru'] as const)(`%s: no growth from step 2 to step ${STEPS}, and the estimate matches the pool`, async (model) => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const config = randomConfig(rng, model);
    const B = 2 + rng.int(6);
    const T = 8 + rng.int(16);
    const at = `${JSON.stringify(config)}, B ${B}, T ${T} (seed ${seed})`;
    g = await openNodeGpu(); // a device of its own: the pool starts empty
    const m = createModel(g, config);
    m.setParams(initParams(config, seed));
    const afterModel = g.pool.allocatedBytes;
    const optim = parseOptimConfig({ lr: 1e-3, grad_clip: 1 });
    const opt = new GpuAdamW(g, m.params, optim);
    const optBytes = g.pool.allocatedBytes - afterModel;
    const sum = new Float32Array(m.params.layout.size);
    const after: number[] = [];
    const losses: number[] = [];
    for (let s = 0; s < STEPS; s++) {
      const batches = Array.from({ length: 2 }, () => ({ B, T, ...randomBatch(rng, config.vocab_size, B, T) })); // 2 micro-batches
      const l = await accumulateGrads(m, batches, sum);
      expect(l.every(Number.isFinite), at).toBe(true);
      const clip = clipGrads(sum, optim.grad_clip, 2);
      await applyGrads(g, m, opt, sum, optim.lr, clip.gradScale);
      losses.push(...l);
      after.push(g.pool.allocatedBytes);
    }
    for (let s = 2; s < STEPS; s++) expect(after[s], `step ${s + 1} allocated ${after[s] - after[1]} bytes more than step 2; ${at}`).toBe(after[1]);
    // the first step allocates the activations; a second step with the same (B, T) only reuses them
    expect(after[0], at).toBe(after[1]);

    const est = estimateStepMemory(config, B, T);
    expect(m.params.bytes.weights, `weights; ${at}`).toBe(est.bytes.weights);
    expect(m.params.bytes.grads, `grads; ${at}`).toBe(est.bytes.grads);
    expect(optBytes, `optimizer state; ${at}`).toBe(est.bytes.optimizer);
    const measured = after[STEPS - 1];
    const activations = measured - m.params.bytes.weights - m.params.bytes.grads - optBytes;
    const err = Math.abs(est.total - measured) / measured;
    console.log(
      `${model} ${at}: measured ${measured} bytes (activations ${activations}), estimate ${est.total} (activations ${est.bytes.activations}), ` +
        `off by ${(100 * err).toFixed(1)}%; losses ${losses[0].toFixed(3)} → ${losses[losses.length - 1].toFixed(3)}`,
    );
    expect(err, `estimate ${est.total} vs measured ${measured}; ${at}`).toBeLessThan(EST_TOL);
    opt.release();
    m.release();
  });
});
