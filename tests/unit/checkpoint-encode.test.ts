// Checkpoints as bytes: bit-exact round trips (NaN, -0, ±Inf, subnormals) for gpt and lstm, the metadata
// PyTorch users read, PyTorch's tensor names and shapes, and errors that say what is wrong.
import { describe, expect, it } from 'vitest';
import pkg from '../../package.json' with { type: 'json' };
import { CharTokenizer } from '../../shared/data/tokenizer.ts';
import {
  decodeCheckpoint,
  decodeOptimizerState,
  encodeCheckpoint,
  encodeOptimizerState,
  type Checkpoint,
  type OptimizerSettings,
} from '../../shared/models/checkpoint.ts';
import { parseModelConfig, type ModelConfig } from '../../shared/models/config.ts';
import { paramLayout } from '../../shared/models/layout.ts';
import { Rng } from '../../shared/rng.ts';
import { readSafetensors, writeSafetensors } from '../../shared/safetensors.ts';

const gpt = parseModelConfig({ model: 'gpt', vocab_size: 11, block_size: 8, n_layer: 2, n_head: 2, n_embd: 6 });
const lstm = parseModelConfig({ model: 'lstm', vocab_size: 9, embed_size: 4, hidden_size: 5, num_layers: 2 });
const optimizer: OptimizerSettings = {
  name: 'adamw',
  lr: 6e-4,
  betas: [0.9, 0.95],
  eps: 1e-8,
  weight_decay: 0.1,
  warmup_steps: 100,
  max_steps: 5000,
  min_lr: 6e-5,
  grad_clip: 1.0,
};

/** random fp32 values with the awkward ones planted: NaN, -0, ±Inf, a subnormal, the largest finite */
function awkward(n: number, seed: number): Float32Array {
  const a = new Rng(seed).normals(n);
  a.set([NaN, -0, Infinity, -Infinity, 1e-42, 3.4028234663852886e38], 1);
  return a;
}

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

function sample(config: ModelConfig, seed: number): Checkpoint {
  const vocab = [...'\n !abcdefghij'].slice(0, config.vocab_size - 1); // one id to spare: a padded vocabulary
  return { config, params: awkward(paramLayout(config).size, seed), tokenizer: new CharTokenizer(vocab), step: 1234, optimizer };
}

/** a file re-written with its tensors or metadata changed */
function edit(bytes: Uint8Array, f: (file: ReturnType<typeof readSafetensors>) => void): Uint8Array {
  const file = readSafetensors(bytes);
  f(file);
  return writeSafetensors(file.tensors, file.metadata);
}

describe.each([
  ['gpt', gpt],
  ['lstm', lstm],
])('%s checkpoint', (_, config) => {
  it('round-trips bit for bit, with its tokenizer, step and optimizer settings', () => {
    const ck = sample(config, 7);
    const back = decodeCheckpoint(encodeCheckpoint(ck));
    expect(back.config).toEqual(config);
    expect(bits(back.params)).toEqual(bits(ck.params));
    expect(Object.is(back.params[2], -0)).toBe(true);
    expect(back.params[1]).toBeNaN();
    expect(back.tokenizer.vocab).toEqual(ck.tokenizer.vocab);
    expect(back.step).toBe(1234);
    expect(back.optimizer).toEqual(optimizer);
    expect(back.gradswarm_version).toBe(pkg.version);
  });

  it('round-trips the optimizer state bit for bit', () => {
    const n = paramLayout(config).size;
    const s = { step: 1234, exp_avg: awkward(n, 1), exp_avg_sq: awkward(n, 2) };
    const back = decodeOptimizerState(encodeOptimizerState(s, config), config);
    expect(back.step).toBe(1234);
    expect(bits(back.exp_avg)).toEqual(bits(s.exp_avg));
    expect(bits(back.exp_avg_sq)).toEqual(bits(s.exp_avg_sq));
  });

  it('stores config, tokenizer, step, optimizer, format and version as metadata strings', () => {
    const ck = sample(config, 3);
    const { metadata } = readSafetensors(encodeCheckpoint(ck));
    expect(Object.keys(metadata)).toEqual(['config', 'tokenizer', 'step', 'optimizer', 'format', 'gradswarm_version']);
    expect(JSON.parse(metadata.config)).toEqual(config);
    expect(JSON.parse(metadata.tokenizer)).toEqual({ type: 'char', vocab: ck.tokenizer.vocab });
    expect(metadata.step).toBe('1234');
    expect(JSON.parse(metadata.optimizer)).toEqual(optimizer);
    expect(metadata.format).toBe('pt');
    expect(metadata.gradswarm_version).toBe(pkg.version);
  });
});

describe('PyTorch names', () => {
  it("gpt: nanoGPT's state_dict, the tied lm_head.weight included", () => {
    const ck = sample(gpt, 5);
    const { tensors, metadata } = readSafetensors(encodeCheckpoint(ck));
    const names = [...paramLayout(gpt).params.map((p) => p.name), 'lm_head.weight'];
    expect(Object.keys(tensors).sort()).toEqual(names.sort());
    expect(tensors['transformer.h.0.attn.c_attn.weight'].shape).toEqual([18, 6]); // (3C, C), nn.Linear's (out, in)
    expect(tensors['transformer.h.1.mlp.c_proj.weight'].shape).toEqual([6, 24]);
    expect(tensors['transformer.wpe.weight'].shape).toEqual([8, 6]);
    expect(tensors['lm_head.weight'].shape).toEqual([11, 6]);
    expect(bits(tensors['lm_head.weight'].data as Float32Array)).toEqual(bits(tensors['transformer.wte.weight'].data as Float32Array));
    expect(Object.keys(JSON.parse(metadata.config))).toEqual(['model', 'vocab_size', 'block_size', 'n_layer', 'n_head', 'n_embd', 'dropout']);
  });

  it('lstm: nn.Embedding, nn.LSTM(batch_first=True) and nn.Linear names', () => {
    const { tensors, metadata } = readSafetensors(encodeCheckpoint(sample(lstm, 5)));
    expect(Object.keys(tensors).sort()).toEqual(
      ['embedding.weight', 'head.weight', 'head.bias', ...[0, 1].flatMap((k) => ['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'].map((w) => `rnn.${w}_l${k}`))].sort(),
    );
    expect(tensors['rnn.weight_ih_l0'].shape).toEqual([20, 4]); // (4H, E)
    expect(tensors['rnn.weight_ih_l1'].shape).toEqual([20, 5]); // (4H, H)
    expect(Object.keys(JSON.parse(metadata.config))).toEqual(['model', 'vocab_size', 'embed_size', 'hidden_size', 'num_layers']);
  });

  it('optimizer state: exp_avg.<name> and exp_avg_sq.<name>, no tied duplicate', () => {
    const n = paramLayout(gpt).size;
    const { tensors, metadata } = readSafetensors(encodeOptimizerState({ step: 3, exp_avg: awkward(n, 1), exp_avg_sq: awkward(n, 2) }, gpt));
    const names = paramLayout(gpt).params.flatMap((p) => [`exp_avg.${p.name}`, `exp_avg_sq.${p.name}`]);
    expect(Object.keys(tensors).sort()).toEqual(names.sort());
    expect(tensors['exp_avg.transformer.h.0.attn.c_attn.weight'].shape).toEqual([18, 6]);
    expect(metadata.step).toBe('3');
  });
});

describe('errors', () => {
  const good = encodeCheckpoint(sample(gpt, 9));

  it('names missing metadata keys', () => {
    const bad = edit(good, (f) => {
      delete f.metadata.tokenizer;
      delete f.metadata.step;
    });
    expect(() => decodeCheckpoint(bad)).toThrow("checkpoint: __metadata__ has no 'tokenizer', 'step'");
  });

  it('shows the config errors', () => {
    const bad = edit(good, (f) => (f.metadata.config = JSON.stringify({ ...gpt, n_head: 5, n_layer: 0 })));
    expect(() => decodeCheckpoint(bad)).toThrow(
      'checkpoint: config invalid: model config: n_layer: must be a positive integer (≥ 1), got 0; n_head: 5 does not divide n_embd 6',
    );
  });

  it('names missing and misshapen tensors', () => {
    const bad = edit(good, (f) => {
      delete f.tensors['transformer.h.1.ln_2.bias'];
      f.tensors['transformer.h.0.attn.c_attn.weight'].shape = [6, 18];
    });
    expect(() => decodeCheckpoint(bad)).toThrow("checkpoint: state dict for gpt: 'transformer.h.0.attn.c_attn.weight' has shape (6, 18) but this gpt config needs (18, 6)");
    expect(() => decodeCheckpoint(bad)).toThrow("missing tensor 'transformer.h.1.ln_2.bias' (6)");
  });

  it('refuses a tokenizer larger than vocab_size, a bad optimizer, a bad step', () => {
    const big = new CharTokenizer([...'abcdefghijkl']);
    expect(() => encodeCheckpoint({ ...sample(gpt, 1), tokenizer: big })).toThrow('the tokenizer has 12 symbols but config vocab_size is 11');
    expect(() => encodeCheckpoint({ ...sample(gpt, 1), optimizer: { ...optimizer, betas: [0.9, 1] } })).toThrow('invalid beta2 1');
    expect(() => decodeCheckpoint(edit(good, (f) => (f.metadata.optimizer = '{"name":"sgd"}')))).toThrow('optimizer name must be "adamw", got "sgd"');
    expect(() => decodeCheckpoint(edit(good, (f) => (f.metadata.step = '-1')))).toThrow('step must be an integer ≥ 0, got "-1"');
    expect(() => encodeCheckpoint({ ...sample(gpt, 1), params: new Float32Array(3) })).toThrow('gpt layout holds');
  });

  it('names missing, misshapen and unexpected optimizer tensors', () => {
    const n = paramLayout(gpt).size;
    const ok = encodeOptimizerState({ step: 3, exp_avg: new Float32Array(n), exp_avg_sq: new Float32Array(n) }, gpt);
    const bad = edit(ok, (f) => {
      delete f.tensors['exp_avg_sq.transformer.ln_f.bias'];
      f.tensors['exp_avg.transformer.wpe.weight'].shape = [48];
      f.tensors['exp_avg.lm_head.weight'] = { shape: [11, 6], data: new Float32Array(66) };
    });
    expect(() => decodeOptimizerState(bad, gpt)).toThrow(
      "optimizer state for gpt: 'exp_avg.transformer.wpe.weight' has shape (48) but this gpt config needs (8, 6); missing tensor 'exp_avg_sq.transformer.ln_f.bias' (6); unexpected tensor 'exp_avg.lm_head.weight'",
    );
    expect(() => decodeOptimizerState(ok, lstm)).toThrow('optimizer state for lstm: missing tensor');
    expect(() => encodeOptimizerState({ step: 3, exp_avg: new Float32Array(n), exp_avg_sq: new Float32Array(2) }, gpt)).toThrow(
      `optimizer state: exp_avg_sq has 2 elements but the gpt layout holds ${n}`,
    );
  });
});
