// The rnn / lstm / gru models on the GPU (Node, Dawn) against the float64 CPU reference model: the loss and
// every gradient tensor, for fresh random weights (initParams with a fresh seed) and random batches with
// ignored targets; then a second step on a new batch, which must allocate nothing and match again. The first
// step runs with NaN-poisoned buffers; the second step's dispatch and submit counts are the real ones.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openNodeGpu } from '../../client/host/node-gpu.ts';
import { RecurrentModel } from '../../client/models/recurrent.ts';
import type { Gpu } from '../../client/runtime/gpu.ts';
import { parseModelConfig, type RecurrentConfig } from '../../shared/models/config.ts';
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

// odd sizes; the second case has H past one step workgroup (64) and B past one vec4 of batch rows, N > V
// (embedding backward by row), the first N < V (by sorted run)
const CASES: [string, { V: number; E: number; H: number; L: number }, [number, number]][] = [
  ['tiny', { V: 29, E: 7, H: 13, L: 2 }, [2, 9]],
  ['odd', { V: 19, E: 11, H: 67, L: 3 }, [5, 7]],
];

describe.each(['rnn', 'lstm', 'gru'] as const)('%s model on the GPU', (model) => {
  it.each(CASES)('%s: loss and every gradient tensor match the CPU reference, and a second step allocates nothing', async (_name, s, [B, T]) => {
    const config = parseModelConfig({ model, vocab_size: s.V, embed_size: s.E, hidden_size: s.H, num_layers: s.L }) as RecurrentConfig;
    const layout = paramLayout(config);
    const seed = freshSeed();
    const rng = new Rng(seed);
    const params = initParams(config, seed);
    // step 0 runs on NaN-poisoned buffers (grads, activations, scratch): an element never written shows up
    g.poison = true;
    const m = new RecurrentModel(g, config);
    m.setParams(params);
    const worst: string[] = [];
    let bytes = 0;
    for (let step = 0; step < 2; step++) {
      const { idx, targets } = randomBatch(rng, s.V, B, T);
      const d0 = g.dispatches;
      const s0 = g.submits;
      const got = await m.lossAndGrads(idx, targets, B, T);
      const dispatches = g.dispatches - d0;
      const submits = g.submits - s0;
      g.poison = false;
      if (step === 0) bytes = g.pool.allocatedBytes;
      else expect(g.pool.allocatedBytes, `step 2 allocated ${g.pool.allocatedBytes - bytes} more bytes (seed ${seed})`).toBe(bytes);
      const ref = modelLossAndGrads(config, params, { shape: [B, T], data: idx }, { shape: [B, T], data: targets });
      const lossErr = Math.abs(got.loss - ref.loss) / Math.abs(ref.loss);
      expect(lossErr, `loss: GPU ${got.loss}, reference ${ref.loss} (seed ${seed}, step ${step})`).toBeLessThanOrEqual(LOSS_TOL);
      expect(got.grads.length).toBe(layout.size);
      let max = 0;
      for (const p of layout.params) {
        const e = relError(layout.view(got.grads, p.name), layout.view(ref.grads, p.name));
        const first = [...layout.view(got.grads, p.name).subarray(0, 3)].map((v) => v.toPrecision(5));
        const want = [...layout.view(ref.grads, p.name).subarray(0, 3)].map((v) => v.toPrecision(5));
        expect(e, `${p.name}: normwise relative error ${e.toExponential(2)}; GPU ${first} vs reference ${want} (seed ${seed}, step ${step})`).toBeLessThanOrEqual(GRAD_TOL);
        max = Math.max(max, e);
      }
      worst.push(`step ${step}: loss ${lossErr.toExponential(1)}, worst grad ${max.toExponential(1)}, ${dispatches} dispatches, ${submits} submits`);
    }
    console.log(`${model} ${_name} (B ${B}, T ${T}, seed ${seed}): ${worst.join('; ')}`);
    m.release();
  });
});
