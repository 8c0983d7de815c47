// The CPU reference models: every parameter tensor's gradient against central finite differences of the
// loss (float64, tiny configs, random probe elements of every tensor), the tied head, ignored targets and
// batch checks. Parameters are drawn wider than init (std 0.3) so every gradient is far from zero.
import { describe, expect, it } from 'vitest';
import { parseModelConfig, type ModelConfig } from '../../shared/models/config.ts';
import { initParams } from '../../shared/models/init.ts';
import { paramLayout } from '../../shared/models/layout.ts';
import { modelLoss, modelLossAndGrads } from '../../shared/models/reference/index.ts';
import { freshSeed, Rng } from '../../shared/rng.ts';
import type { HostTensor } from '../../shared/tensor.ts';

const CONFIGS: ModelConfig[] = [
  parseModelConfig({ model: 'gpt', vocab_size: 11, block_size: 7, n_layer: 2, n_head: 2, n_embd: 6 }),
  parseModelConfig({ model: 'rnn', vocab_size: 9, embed_size: 4, hidden_size: 5, num_layers: 2 }),
  parseModelConfig({ model: 'lstm', vocab_size: 9, embed_size: 4, hidden_size: 5, num_layers: 2 }),
  parseModelConfig({ model: 'gru', vocab_size: 9, embed_size: 4, hidden_size: 5, num_layers: 2 }),
];

function batch(rng: Rng, V: number, B: number, T: number, ignored = 0.2): { idx: HostTensor; targets: HostTensor } {
  const targets = rng.ints(B * T, V);
  for (let i = 0; i < targets.length; i++) if (rng.next() < ignored) targets[i] = -1;
  return { idx: { shape: [B, T], data: rng.ints(B * T, V) }, targets: { shape: [B, T], data: targets } };
}

const STEP = 1e-5;
const PROBES = 6;

describe.each(CONFIGS.map((c) => [c.model, c] as const))('%s reference model', (_m, config) => {
  it('matches central finite differences on every parameter tensor', () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const layout = paramLayout(config);
    const params = Float64Array.from(rng.normals(layout.size, 0.3));
    // T < block_size for gpt, so unused position rows must get exactly zero gradient
    const { idx, targets } = batch(rng, config.vocab_size, 2, 5);
    const { loss, grads } = modelLossAndGrads(config, params, idx, targets);
    expect(loss).toBeCloseTo(modelLoss(config, params, idx, targets), 12);
    for (const p of layout.params) {
      const x = layout.view(params, p.name);
      const g = layout.view(grads, p.name);
      const norm = Math.sqrt(g.reduce((s, v) => s + v * v, 0));
      expect(norm, `${p.name} has an all-zero gradient (seed ${seed})`).toBeGreaterThan(1e-6);
      for (let probe = 0; probe < PROBES; probe++) {
        const i = rng.int(x.length);
        const keep = x[i];
        x[i] = keep + STEP;
        const up = modelLoss(config, params, idx, targets);
        x[i] = keep - STEP;
        const down = modelLoss(config, params, idx, targets);
        x[i] = keep;
        const fd = (up - down) / (2 * STEP);
        // central differences: O(STEP²) truncation + O(1e-16 / STEP) rounding, ~1e-10 here
        expect(Math.abs(fd - g[i]), `${p.name}[${i}]: finite difference ${fd}, backward ${g[i]} (seed ${seed})`).toBeLessThan(1e-8 + 1e-6 * Math.abs(fd));
      }
    }
    if (config.model === 'gpt') {
      const wpe = layout.view(grads, 'transformer.wpe.weight');
      expect(wpe.subarray(5 * config.n_embd).every((v) => v === 0)).toBe(true);
    }
  });

  it('starts near ln(V) from its init and ignores targets of -1', () => {
    const rng = new Rng(7);
    const params = initParams(config, 7);
    const { idx, targets } = batch(rng, config.vocab_size, 3, 4, 0);
    const loss = modelLoss(config, params, idx, targets);
    // gpt's logits start within ~0.1 of zero; the recurrent heads' uniform(±1/sqrt(H)) init spreads them more
    expect(Math.abs(loss - Math.log(config.vocab_size))).toBeLessThan(config.model === 'gpt' ? 0.05 : 0.5);
    // the loss is a mean over the targets that are not ignored: with n targets, splitting them into the first
    // and the rest (each with the others set to -1) gives n·L = 1·L_first + (n − 1)·L_rest, gradients alike
    const n = targets.data.length;
    const first = Int32Array.from(targets.data, (v, i) => (i === 0 ? v : -1));
    const rest = Int32Array.from(targets.data, (v, i) => (i === 0 ? -1 : v));
    const whole = modelLossAndGrads(config, params, idx, targets);
    const a = modelLossAndGrads(config, params, idx, { shape: targets.shape, data: first });
    const b = modelLossAndGrads(config, params, idx, { shape: targets.shape, data: rest });
    expect(n * whole.loss).toBeCloseTo(a.loss + (n - 1) * b.loss, 10);
    for (let i = 0; i < whole.grads.length; i++) expect(n * whole.grads[i]).toBeCloseTo(a.grads[i] + (n - 1) * b.grads[i], 10);
    const all = { shape: targets.shape, data: new Int32Array(12).fill(-1) };
    expect(modelLoss(config, params, idx, all)).toBeNaN();
  });

  it('checks the batch', () => {
    const params = initParams(config, 1);
    const V = config.vocab_size;
    const ok = { shape: [1, 3], data: Int32Array.of(0, 1, 2) };
    expect(() => modelLoss(config, params, { shape: [1, 3], data: Int32Array.of(0, V, 1) }, ok)).toThrow(`batch: idx[0, 1] = ${V} is out of range [0, ${V})`);
    expect(() => modelLoss(config, params, ok, { shape: [3, 1], data: Int32Array.of(0, 1, 2) })).toThrow('batch: idx is (1, 3) but targets is (3, 1)');
    expect(() => modelLoss(config, params, ok, { shape: [1, 3], data: Int32Array.of(0, -2, 1) })).toThrow('batch: targets[0, 1] = -2 is out of range');
    expect(() => modelLoss(config, params.subarray(1), ok, ok)).toThrow('parameters but the array has');
    if (config.model === 'gpt') {
      const long = { shape: [1, 8], data: new Int32Array(8) };
      expect(() => modelLoss(config, params, long, long)).toThrow('batch: T = 8 exceeds block_size 7');
    }
  });
});
