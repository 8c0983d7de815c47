// Seeded initialisation: per-parameter statistics against GPT-2 / PyTorch defaults, determinism by seed.
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../shared/models/config.ts';
import { initParams } from '../../shared/models/init.ts';
import { paramLayout } from '../../shared/models/layout.ts';

const stats = (v: Float32Array) => {
  let s = 0, s2 = 0, lo = Infinity, hi = -Infinity;
  for (const x of v) {
    s += x;
    s2 += x * x;
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
  }
  const mean = s / v.length;
  return { mean, std: Math.sqrt(s2 / v.length - mean * mean), lo, hi };
};

describe('gpt init', () => {
  const c = parseModelConfig({ model: 'gpt', vocab_size: 96, block_size: 64, n_layer: 3, n_head: 4, n_embd: 64 });
  const l = paramLayout(c);
  const flat = initParams(c, 1234);

  it('draws normal(0.02), residual projections 0.02/sqrt(2L), zero biases, unit LayerNorm weights', () => {
    const scaled = 0.02 / Math.sqrt(6);
    for (const p of l.params) {
      const v = l.view(flat, p.name);
      if (/ln_(1|2|f)\.weight$/.test(p.name)) expect(v.every((x) => x === 1), p.name).toBe(true);
      else if (p.name.endsWith('.bias')) expect(v.every((x) => x === 0), p.name).toBe(true);
      else {
        const std = p.name.endsWith('c_proj.weight') ? scaled : 0.02;
        const st = stats(v);
        // n ≥ 4096 samples: the sample std is within ~2.2% (1σ) of the true one; allow 10%
        expect(Math.abs(st.std / std - 1), `${p.name} std ${st.std} vs ${std}`).toBeLessThan(0.1);
        expect(Math.abs(st.mean), p.name).toBeLessThan((4 * std) / Math.sqrt(v.length));
      }
    }
    expect(l.params.map((p) => p.name)).not.toContain('lm_head.weight');
  });

  it('is a pure function of the seed', () => {
    const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer).equals(Buffer.from(b.buffer));
    expect(same(initParams(c, 1234), flat)).toBe(true);
    expect(same(initParams(c, 1235), flat)).toBe(false);
  });
});

describe.each(['rnn', 'lstm', 'gru'] as const)('%s init', (model) => {
  it("follows PyTorch's defaults: embedding normal(0, 1), everything else uniform ±1/sqrt(H)", () => {
    const H = 64;
    const c = parseModelConfig({ model, vocab_size: 80, embed_size: 48, hidden_size: H, num_layers: 2 });
    const l = paramLayout(c);
    const flat = initParams(c, 99);
    for (const p of l.params) {
      const st = stats(l.view(flat, p.name));
      if (p.name === 'embedding.weight') {
        expect(Math.abs(st.std - 1), `${p.name} std ${st.std}`).toBeLessThan(0.1);
        continue;
      }
      const k = 1 / Math.sqrt(H);
      expect(st.lo, p.name).toBeGreaterThanOrEqual(-k);
      expect(st.hi, p.name).toBeLessThanOrEqual(k);
      // uniform(±k) has std k/sqrt(3); the smallest tensor here (head.bias) has 80 samples: allow 25%
      expect(Math.abs(st.std / (k / Math.sqrt(3)) - 1), `${p.name} std ${st.std}`).toBeLessThan(0.25);
    }
  });
});
