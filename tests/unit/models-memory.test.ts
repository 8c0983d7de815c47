// The GPU memory estimate of a training step (shared/models/memory.ts) and the device-size check built on it:
// parameter, grad and optimizer bytes against the layout, the dominant activation terms against nanoGPT-style
// counting, the pool model's reuse, and refusals with fake device limits, in the check and in the trainer.
import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../client/runtime/gpu.ts';
import { deviceCapacity, train } from '../../client/train/trainer.ts';
import { encodeCorpus } from '../../shared/data/dataset.ts';
import { parseModelConfig, type ModelConfig } from '../../shared/models/config.ts';
import { paramLayout } from '../../shared/models/layout.ts';
import { checkDeviceFits, DeviceTooSmallError, estimateStepMemory, formatBytes, poolSizeClass } from '../../shared/models/memory.ts';
import { freshSeed, Rng } from '../../shared/rng.ts';
import { parseRunConfig } from '../../shared/train/run-config.ts';

/** a random small config of a family: odd sizes, so pool classes round */
function randomConfig(rng: Rng, model: ModelConfig['model']): ModelConfig {
  const V = 5 + rng.int(120);
  if (model === 'gpt') {
    const nh = 1 + rng.int(4);
    return parseModelConfig({ model, vocab_size: V, block_size: 8 + rng.int(60), n_layer: 1 + rng.int(3), n_head: nh, n_embd: nh * (1 + rng.int(24)) });
  }
  return parseModelConfig({ model, vocab_size: V, embed_size: 1 + rng.int(40), hidden_size: 1 + rng.int(200), num_layers: 1 + rng.int(3) });
}

const MiB = 2 ** 20;

describe('estimateStepMemory', () => {
  it.each(['gpt', 'rnn', 'lstm', 'gru'] as const)('%s: weights, grads (with the flat readback) and AdamW moments are one pool buffer per tensor', (model) => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    for (let i = 0; i < 5; i++) {
      const c = randomConfig(rng, model);
      const B = 1 + rng.int(16);
      const T = 1 + rng.int(isGptBlock(c));
      const layout = paramLayout(c);
      const perTensor = layout.params.reduce((s, p) => s + poolSizeClass(4 * p.numel), 0);
      const e = estimateStepMemory(c, B, T);
      const at = `${JSON.stringify(c)} B ${B} T ${T} (seed ${seed})`;
      expect(e.bytes.weights, at).toBe(perTensor);
      expect(e.bytes.grads, at).toBe(perTensor + poolSizeClass(4 * (layout.size + 1)));
      expect(e.bytes.optimizer, at).toBe(2 * perTensor);
      expect(e.total, at).toBe(e.bytes.weights + e.bytes.grads + e.bytes.optimizer + e.bytes.activations);
      // every size is at least the nominal 4 bytes per element, and at most 12.5% over it past the 256-byte floor
      expect(e.bytes.weights).toBeGreaterThanOrEqual(4 * layout.size);
      expect(e.largest.bytes).toBe(Math.max(...e.buffers.map((b) => b.bytes)));
    }
  });

  it('gpt: activations are (44·L + 6)·B·T·C floats of residual-stream tensors plus logits and dlogits, nearly all of the rest', () => {
    // powers of two: pool classes are exact, so the dominant terms can be counted by hand
    const seed = freshSeed();
    const rng = new Rng(seed);
    const L = 1 + rng.int(4);
    const C = 2 ** (5 + rng.int(3));
    const B = 2 ** (2 + rng.int(3));
    const T = 2 ** (4 + rng.int(3));
    const V = 2 ** (6 + rng.int(3));
    const c = parseModelConfig({ model: 'gpt', vocab_size: V, block_size: T, n_layer: L, n_head: 4, n_embd: C });
    const N = B * T;
    // forward: wte[idx], wpe[t], x; per block 22 (ln_1 1, c_attn 3, q k v 3, attn 1, y 1, c_proj 1, x2 1, ln_2 1,
    // c_fc 4, gelu 4, mlp.c_proj 1, x 1); ln_f 1. backward: dln_f, its dx, per block 22 (dh 4, dc_fc 4, dln_2 1,
    // ln_2 dx 1, dx2 1, dy 1, dy heads 1, dq dk dv 3, dqkv 3, dln_1 1, ln_1 dx 1, dx 1)
    const main = 4 * ((44 * L + 6) * N * C + 2 * N * V);
    const e = estimateStepMemory(c, B, T);
    const at = `L ${L} C ${C} B ${B} T ${T} V ${V} (seed ${seed})`;
    expect(e.bytes.activations, at).toBeGreaterThan(main);
    // the rest: per-row statistics (N floats each), attention lse, batch ids, small scratch
    expect(e.bytes.activations - main, at).toBeLessThan(4 * N * (8 * L + 12) + 4 * V * 2 + 2048);
    expect(e.buffers.filter((b) => b.part === 'activations' && b.name.includes('(B·T, 4C)')).length).toBe(4 * L);
  });

  it('recurrent: the pool reuses what a step releases, so stacked layers cost less than one layer times their count', () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    for (const model of ['rnn', 'lstm', 'gru'] as const) {
      const H = 32 + rng.int(200);
      const E = 8 + rng.int(40);
      const one = parseModelConfig({ model, vocab_size: 89, embed_size: E, hidden_size: H, num_layers: 1 });
      const three = parseModelConfig({ model, vocab_size: 89, embed_size: E, hidden_size: H, num_layers: 3 });
      const [B, T] = [4 + rng.int(12), 8 + rng.int(56)];
      const a1 = estimateStepMemory(one, B, T).bytes.activations;
      const a3 = estimateStepMemory(three, B, T).bytes.activations;
      const at = `${model} E ${E} H ${H} B ${B} T ${T} (seed ${seed})`;
      // BPTT keeps each layer's hprev/out (and gates, c): those grow with depth; scratch (input projection, dgates) does not
      expect(a3, at).toBeGreaterThan(a1);
      expect(a3, at).toBeLessThan(3 * a1);
      // the per-layer saved tensors are at least (B, T, H) twice per layer
      expect(a3 - a1, at).toBeGreaterThanOrEqual(2 * 2 * 4 * B * T * H);
    }
  });

  it('names the largest buffer: the logits for a GPT-2-sized vocabulary, an LSTM gate tensor for a wide one', () => {
    const gpt2 = parseModelConfig({ model: 'gpt', vocab_size: 50257, block_size: 1024, n_layer: 12, n_head: 12, n_embd: 768 });
    const e = estimateStepMemory(gpt2, 8, 1024);
    expect(e.largest.name).toBe('logits (B·T, V)');
    expect(e.largest.bytes).toBe(4 * 8 * 1024 * 50257);
    expect(e.largest.shrink).toMatch(/data\.batch_size or data\.block_size/);
    const lstm = parseModelConfig({ model: 'lstm', vocab_size: 89, embed_size: 64, hidden_size: 1024, num_layers: 2 });
    const l = estimateStepMemory(lstm, 16, 256);
    expect(l.largest.shape).toEqual([16, 256, 4 * 1024]);
    expect(l.largest.bytes).toBe(4 * 16 * 256 * 4096);
  });

  it('refuses bad B or T', () => {
    const c = parseModelConfig({ model: 'rnn', vocab_size: 10 });
    expect(() => estimateStepMemory(c, 0, 4)).toThrow(/B must be a positive integer, got 0/);
    expect(() => estimateStepMemory(c, 2, 1.5)).toThrow(/T must be a positive integer, got 1.5/);
  });
});

describe('checkDeviceFits', () => {
  const gpt2 = parseModelConfig({ model: 'gpt', vocab_size: 50257, block_size: 1024, n_layer: 12, n_head: 12, n_embd: 768 });

  it('refuses a buffer over the per-buffer limit, naming the tensor, its size, the limit and what to shrink', () => {
    const e = estimateStepMemory(gpt2, 8, 1024); // logits: 8192 × 50257 floats = 1.53 GiB
    const dev = { maxStorageBufferBindingSize: 2 ** 30, maxBufferSize: 2 ** 32 };
    let err: unknown;
    try {
      checkDeviceFits(e, dev);
    } catch (x) {
      err = x;
    }
    expect(err).toBeInstanceOf(DeviceTooSmallError);
    const msg = (err as Error).message;
    expect(msg).toContain('a gpt training step with B = 8, T = 1024 needs a buffer of 1.53 GiB for logits (B·T, V) (8192, 50257)');
    expect(msg).toContain("more than this GPU's limit of 1.00 GiB per buffer (maxStorageBufferBindingSize 1073741824, maxBufferSize 4294967296)");
    expect(msg).toContain('1 more buffer is too large as well (dlogits (B·T, V))');
    expect(msg).toMatch(/shrink data\.batch_size or data\.block_size .*so it fits$/);
    // the smaller of the two limits counts; exactly at the limit fits
    expect(() => checkDeviceFits(e, { maxStorageBufferBindingSize: 2 ** 32, maxBufferSize: e.largest.bytes - 4 })).toThrow(/maxBufferSize/);
    expect(() => checkDeviceFits(e, { maxStorageBufferBindingSize: e.largest.bytes, maxBufferSize: e.largest.bytes })).not.toThrow();
    // half the batch halves the logits: under 1 GiB
    expect(() => checkDeviceFits(estimateStepMemory(gpt2, 4, 1024), dev)).not.toThrow();
  });

  it('refuses a total over what the device can hold, saying which part dominates', () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const c = randomConfig(rng, 'lstm');
    const e = estimateStepMemory(c, 64, 256); // activations dominate a small model on a big batch
    const big = { maxStorageBufferBindingSize: 2 ** 31, maxBufferSize: 2 ** 31 };
    expect(() => checkDeviceFits(e, { ...big, memoryBytes: e.total })).not.toThrow();
    expect(() => checkDeviceFits(e, big)).not.toThrow(); // memory unknown: not checked
    expect(() => checkDeviceFits(e, { ...big, memoryBytes: e.total - 1, memorySource: 'test' })).toThrow(
      new RegExp(`needs about ${formatBytes(e.total).replace('.', '\\.')} of GPU memory \\(weights .*\\), more than the .* this device can plausibly hold \\(test\\): shrink data\\.batch_size or data\\.block_size \\(the activations dominate`),
    );
    // weights dominate: a wide model on one token
    const wide = parseModelConfig({ model: 'gpt', vocab_size: 50257, block_size: 8, n_layer: 4, n_head: 8, n_embd: 1024 });
    const w = estimateStepMemory(wide, 1, 1);
    expect(w.bytes.weights + w.bytes.grads + w.bytes.optimizer).toBeGreaterThan(w.bytes.activations);
    expect(() => checkDeviceFits(w, { ...big, memoryBytes: 256 * MiB })).toThrow(/shrink the model \(model\.n_embd or model\.n_layer\)$/);
  });

  it('the trainer refuses such a config before it allocates anything on the device', async () => {
    const rng = new Rng(freshSeed());
    const text = Array.from({ length: 4000 }, () => 'abcdefgh '[rng.int(9)]).join('');
    const { tokenizer, dataset } = encodeCorpus(text);
    const config = parseRunConfig({
      model: { model: 'gpt', n_layer: 1, n_head: 2, n_embd: 64, vocab_size: tokenizer.size },
      data: { batch_size: 32, block_size: 128 },
      train: { max_steps: 1 },
    });
    // a fake device with only limits: any other use of it is recorded
    const calls: string[] = [];
    const fakeGpu = (perBuffer: number) =>
      new Proxy({ limits: { maxStorageBufferBindingSize: perBuffer, maxBufferSize: perBuffer } } as unknown as Gpu, {
        get(t, k) {
          if (k !== 'limits' && k !== 'then') calls.push(String(k));
          return (t as unknown as Record<PropertyKey, unknown>)[k];
        },
      });
    // 1 MiB per buffer: (B·T, 4C) = 4096 × 256 floats = 4 MiB does not fit
    await expect(train({ gpu: fakeGpu(MiB), config, dataset, tokenizer })).rejects.toThrow(
      /a gpt training step with B = 32, T = 128 needs a buffer of 4\.00 MiB for h\.0\.c_fc \(B·T, 4C\) \(4096, 256\), more than this GPU's limit of 1\.00 MiB per buffer/,
    );
    // every buffer fits, the total does not
    await expect(train({ gpu: fakeGpu(2 ** 30), config, dataset, tokenizer, memoryBytes: 16 * MiB })).rejects.toThrow(/needs about .* of GPU memory .* more than the 16\.0 MiB this device can plausibly hold \(as configured\)/);
    expect(calls, 'the trainer touched the device before refusing').toEqual([]);
  });

  it('deviceCapacity: the configured memory wins; without it, only the limits in Node', () => {
    const lim = { maxStorageBufferBindingSize: 1, maxBufferSize: 2 };
    expect(deviceCapacity(lim, 123)).toEqual({ maxStorageBufferBindingSize: 1, maxBufferSize: 2, memoryBytes: 123, memorySource: 'as configured' });
    const nav = (globalThis.navigator as { deviceMemory?: number } | undefined)?.deviceMemory;
    if (nav === undefined) expect(deviceCapacity(lim)).toEqual({ maxStorageBufferBindingSize: 1, maxBufferSize: 2 });
    else expect(deviceCapacity(lim).memoryBytes).toBe(nav * 2 ** 30);
  });
});

function isGptBlock(c: ModelConfig): number {
  return c.model === 'gpt' ? c.block_size : 64;
}
