// The gpt model on the GPU (Node, Dawn) against the float64 CPU reference model: the loss and every gradient
// tensor, for fresh random weights (initParams with a fresh seed) and random batches with ignored targets;
// then two more steps on new batches, which must allocate nothing and match again. The first step runs with
// NaN-poisoned buffers; the later steps' dispatch and submit counts are the real ones.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openNodeGpu } from '../../client/host/node-gpu.ts';
import { GptModel } from '../../client/models/gpt.ts';
import type { Gpu } from '../../client/runtime/gpu.ts';
import { parseModelConfig, type GptConfig } from '../../shared/models/config.ts';
import { initParams } from '../../shared/models/init.ts';
import { paramLayout } from '../../shared/models/layout.ts';
import { modelLossAndGrads } from '../../shared/models/reference/index.ts';
import { freshSeed, Rng } from '../../shared/rng.ts';
import { relError } from '../../shared/ops.ts';
import { randomBatch } from './model-batch.ts';

let g: Gpu;
beforeAll(async () => {
  g = await openNodeGpu();
});
afterAll(() => g?.destroy());

const LOSS_TOL = 1e-4;
const GRAD_TOL = 1e-3;

// odd sizes. tiny: T < block_size (wpe rows ≥ T get zero grad), N < V (embedding backward by sorted run);
// odd: T = block_size, N > V (by row), head size 12 (not a multiple of 8), 3 blocks. `noise` is added to every
// parameter (std) on top of GPT-2's init (std 0.02, biases 0, LayerNorm 1, 0), as training would move them:
// attention scores of std ~1, far from the near-uniform attention of a fresh init.
const CASES: [string, { V: number; bs: number; L: number; nh: number; C: number }, [number, number], number][] = [
  ['tiny', { V: 37, bs: 9, L: 2, nh: 2, C: 12 }, [2, 7], 0],
  ['odd', { V: 19, bs: 11, L: 3, nh: 3, C: 36 }, [3, 11], 0],
  ['odd, trained-like weights', { V: 19, bs: 11, L: 2, nh: 3, C: 36 }, [3, 11], 0.15],
  // N = 560 rows: weight grads split over K (matmul's split-K + sum_rows), T past one attention workgroup (64)
  ['larger', { V: 67, bs: 80, L: 1, nh: 2, C: 40 }, [8, 70], 0.1],
];

describe('gpt model on the GPU', () => {
  it.each(CASES)('%s: loss and every gradient tensor match the CPU reference, and later steps allocate nothing', async (name, s, [B, T], noise) => {
    const config = parseModelConfig({ model: 'gpt', vocab_size: s.V, block_size: s.bs, n_layer: s.L, n_head: s.nh, n_embd: s.C }) as GptConfig;
    const layout = paramLayout(config);
    const seed = freshSeed();
    const rng = new Rng(seed);
    const params = initParams(config, seed);
    if (noise) for (let i = 0; i < params.length; i++) params[i] += noise * rng.normal();
    // step 0 runs on NaN-poisoned buffers (grads, activations, scratch): an element never written shows up
    g.poison = true;
    const m = new GptModel(g, config);
    m.setParams(params);
    const worst: string[] = [];
    let bytes = 0;
    for (let step = 0; step < 3; step++) {
      const { idx, targets } = randomBatch(rng, s.V, B, T);
      const d0 = g.dispatches;
      const s0 = g.submits;
      const got = await m.lossAndGrads(idx, targets, B, T);
      const dispatches = g.dispatches - d0;
      const submits = g.submits - s0;
      g.poison = false;
      if (step === 0) bytes = g.pool.allocatedBytes;
      else expect(g.pool.allocatedBytes, `step ${step} allocated ${g.pool.allocatedBytes - bytes} more bytes (seed ${seed})`).toBe(bytes);
      const ref = modelLossAndGrads(config, params, { shape: [B, T], data: idx }, { shape: [B, T], data: targets });
      const lossErr = Math.abs(got.loss - ref.loss) / Math.abs(ref.loss);
      expect(lossErr, `loss: GPU ${got.loss}, reference ${ref.loss} (seed ${seed}, step ${step})`).toBeLessThanOrEqual(LOSS_TOL);
      expect(got.grads.length).toBe(layout.size);
      let max = 0;
      let maxName = '';
      for (const p of layout.params) {
        const e = relError(layout.view(got.grads, p.name), layout.view(ref.grads, p.name));
        const first = [...layout.view(got.grads, p.name).subarray(0, 3)].map((v) => v.toPrecision(5));
        const want = [...layout.view(ref.grads, p.name).subarray(0, 3)].map((v) => v.toPrecision(5));
        expect(e, `${p.name}: normwise relative error ${e.toExponential(2)}; GPU ${first} vs reference ${want} (seed ${seed}, step ${step})`).toBeLessThanOrEqual(GRAD_TOL);
        if (e > max) [max, maxName] = [e, p.name];
      }
      worst.push(`step ${step}: loss ${lossErr.toExponential(1)}, worst grad ${max.toExponential(1)} (${maxName}), ${dispatches} dispatches, ${submits} submits`);
    }
    console.log(`gpt ${name} (B ${B}, T ${T}, seed ${seed}): ${worst.join('; ')}`);
    m.release();
  });
});
