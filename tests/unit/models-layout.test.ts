// Flat parameter layouts: PyTorch names, shapes and offsets by hand, parameter counts by formula, views,
// and the state-dict round trip with its errors.
import { describe, expect, it } from 'vitest';
import { parseModelConfig, type ModelConfig } from '../../shared/models/config.ts';
import { paramLayout } from '../../shared/models/layout.ts';
import { Rng } from '../../shared/rng.ts';
import type { HostTensor } from '../../shared/tensor.ts';

const gpt = parseModelConfig({ model: 'gpt', vocab_size: 11, block_size: 8, n_layer: 2, n_head: 2, n_embd: 6 });

const table = (c: ModelConfig) => paramLayout(c).params.map((p) => [p.name, p.shape, p.offset, p.decay]);

describe('gpt layout', () => {
  it('lists nanoGPT state_dict names, shapes and offsets', () => {
    const V = 11, B = 8, C = 6;
    const block = (i: number, o: number) => [
      [`transformer.h.${i}.ln_1.weight`, [C], o, false],
      [`transformer.h.${i}.ln_1.bias`, [C], o + 6, false],
      [`transformer.h.${i}.attn.c_attn.weight`, [3 * C, C], o + 12, true],
      [`transformer.h.${i}.attn.c_attn.bias`, [3 * C], o + 120, false],
      [`transformer.h.${i}.attn.c_proj.weight`, [C, C], o + 138, true],
      [`transformer.h.${i}.attn.c_proj.bias`, [C], o + 174, false],
      [`transformer.h.${i}.ln_2.weight`, [C], o + 180, false],
      [`transformer.h.${i}.ln_2.bias`, [C], o + 186, false],
      [`transformer.h.${i}.mlp.c_fc.weight`, [4 * C, C], o + 192, true],
      [`transformer.h.${i}.mlp.c_fc.bias`, [4 * C], o + 336, false],
      [`transformer.h.${i}.mlp.c_proj.weight`, [C, 4 * C], o + 360, true],
      [`transformer.h.${i}.mlp.c_proj.bias`, [C], o + 504, false],
    ];
    const per = 12 * C * C + 13 * C; // 510
    expect(per).toBe(510);
    const h0 = V * C + B * C; // 66 + 48
    expect(table(gpt)).toEqual([
      ['transformer.wte.weight', [V, C], 0, false],
      ['transformer.wpe.weight', [B, C], 66, false],
      ...block(0, h0),
      ...block(1, h0 + per),
      ['transformer.ln_f.weight', [C], h0 + 2 * per, false],
      ['transformer.ln_f.bias', [C], h0 + 2 * per + 6, false],
    ]);
  });

  it("totals nanoGPT's parameter count, with the tied head counted once", () => {
    for (const [V, Tb, L, C, nh] of [[11, 8, 2, 6, 2], [65, 256, 6, 384, 6], [50257, 1024, 12, 768, 12]]) {
      const c = parseModelConfig({ model: 'gpt', vocab_size: V, block_size: Tb, n_layer: L, n_head: nh, n_embd: C });
      const l = paramLayout(c);
      expect(l.size).toBe(V * C + Tb * C + L * (12 * C * C + 13 * C) + 2 * C);
      expect(l.params.some((p) => p.name === 'lm_head.weight')).toBe(false);
    }
    // GPT-2 small: 124,439,808 parameters (nanoGPT prints 124.44M with wpe, 123.65M without)
    expect(paramLayout(parseModelConfig({ model: 'gpt', vocab_size: 50257, block_size: 1024, n_layer: 12, n_head: 12, n_embd: 768 })).size).toBe(124_439_808);
  });
});

describe('recurrent layouts', () => {
  it.each([['rnn', 1], ['lstm', 4], ['gru', 3]] as const)('%s: torch.nn names, G·H rows, offsets and total', (model, G) => {
    const V = 7, E = 5, H = 4;
    const c = parseModelConfig({ model, vocab_size: V, embed_size: E, hidden_size: H, num_layers: 2 });
    const GH = G * H;
    let o = V * E;
    const layer = (k: number, I: number) => {
      const rows = [
        [`rnn.weight_ih_l${k}`, [GH, I], o, true],
        [`rnn.weight_hh_l${k}`, [GH, H], o + GH * I, true],
        [`rnn.bias_ih_l${k}`, [GH], o + GH * (I + H), false],
        [`rnn.bias_hh_l${k}`, [GH], o + GH * (I + H + 1), false],
      ];
      o += GH * (I + H + 2);
      return rows;
    };
    const expected = [['embedding.weight', [V, E], 0, false], ...layer(0, E), ...layer(1, H)];
    expected.push(['head.weight', [V, H], o, true], ['head.bias', [V], o + V * H, false]);
    expect(table(c)).toEqual(expected);
    expect(paramLayout(c).size).toBe(V * E + GH * (E + H + 2) + GH * (H + H + 2) + V * H + V);
  });
});

describe('views and state dicts', () => {
  const configs: ModelConfig[] = [gpt, parseModelConfig({ model: 'lstm', vocab_size: 9, embed_size: 3, hidden_size: 5, num_layers: 2 })];

  it('view is a subarray of the flat array at the parameter offset', () => {
    const l = paramLayout(gpt);
    const flat = new Float32Array(l.size);
    const v = l.view(flat, 'transformer.h.1.attn.c_proj.bias');
    v[2] = 7;
    expect(flat[l.spec('transformer.h.1.attn.c_proj.bias').offset + 2]).toBe(7);
    expect(l.view(new Float64Array(l.size), 'transformer.ln_f.weight')).toBeInstanceOf(Float64Array);
    expect(l.view(flat, 'lm_head.weight')).toEqual(l.view(flat, 'transformer.wte.weight'));
    expect(() => l.view(flat, 'transformer.h.2.ln_1.weight')).toThrow("gpt layout has no parameter 'transformer.h.2.ln_1.weight'");
    expect(() => l.view(new Float32Array(3), 'transformer.ln_f.weight')).toThrow(`gpt layout holds ${l.size} elements but the array has 3`);
  });

  it.each(configs.map((c) => [c.model, c] as const))('%s: round-trips bit-exactly (NaN payloads, -0, subnormals included)', (_m, c) => {
    const l = paramLayout(c);
    const flat = new Rng(1).normals(l.size);
    flat[0] = -0;
    flat[1] = 1e-42;
    new Uint32Array(flat.buffer)[2] = 0x7fc00123; // a NaN with a payload
    const sd = l.toStateDict(flat);
    const back = l.fromStateDict(sd);
    expect(new Uint32Array(back.buffer)).toEqual(new Uint32Array(flat.buffer));
    expect(Object.keys(sd)).toEqual([...l.params.map((p) => p.name), ...(c.model === 'gpt' ? ['lm_head.weight'] : [])]);
    for (const p of l.params) expect(sd[p.name].shape).toEqual(p.shape);
    sd[l.params[0].name].data[0] = 42; // copies, not views
    expect(flat[0]).not.toBe(42);
  });

  it('emits the tied lm_head and accepts it (and its absence) on load only when equal', () => {
    const l = paramLayout(gpt);
    const flat = new Rng(2).normals(l.size);
    const sd = l.toStateDict(flat);
    expect(sd['lm_head.weight']).toEqual(sd['transformer.wte.weight']);
    const { ['lm_head.weight']: _head, ...untied } = sd;
    expect(l.fromStateDict(untied)).toEqual(flat);
    sd['lm_head.weight'].data[3] += 1;
    expect(() => l.fromStateDict(sd)).toThrow("'lm_head.weight' differs from 'transformer.wte.weight': this model ties them");
  });

  it('accepts torch.compile prefixes, float64 data and nanoGPT mask buffers', () => {
    const l = paramLayout(gpt);
    const flat = new Rng(3).normals(l.size);
    const sd: Record<string, HostTensor> = Object.fromEntries(
      Object.entries(l.toStateDict(flat)).map(([k, t]) => [`_orig_mod.${k}`, { shape: t.shape, data: Float64Array.from(t.data) }]),
    );
    sd['transformer.h.0.attn.bias'] = { shape: [1, 1, 8, 8], data: new Float32Array(64) };
    expect(l.fromStateDict(sd)).toEqual(flat);
  });

  it('names every missing, unexpected or misshapen tensor with both shapes', () => {
    const l = paramLayout(gpt);
    const sd = l.toStateDict(new Float32Array(l.size));
    delete sd['transformer.h.1.ln_2.bias'];
    sd['transformer.h.0.attn.c_attn.weight'] = { shape: [6, 18], data: new Float32Array(108) };
    sd['transformer.h.0.ln_1.weight'] = { shape: [6], data: new Int32Array(6) };
    sd['extra.weight'] = { shape: [1], data: new Float32Array(1) };
    let msg = '';
    try {
      l.fromStateDict(sd);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/^state dict for gpt: /);
    expect(msg).toContain("'transformer.h.0.attn.c_attn.weight' has shape (6, 18) but this gpt config needs (18, 6)");
    expect(msg).toContain("missing tensor 'transformer.h.1.ln_2.bias' (6)");
    expect(msg).toContain("'transformer.h.0.ln_1.weight' holds integers");
    expect(msg).toContain("unexpected tensor 'extra.weight'");
  });
});
