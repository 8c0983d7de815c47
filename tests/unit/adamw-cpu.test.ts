// CpuAdamW (shared/train/adamw-cpu.ts, the coordinator's optimizer) runs its loop in WebAssembly SIMD: every stored
// float32 (weights, both moments) bit for bit the scalar float64 loop it replaced, kept here as the reference, over
// several steps, in place and into another array, on layouts whose tensors start at odd offsets and span the staging
// block; and the committed bytes are those of the committed .wat. (Its agreement with torch's float64 AdamW is
// tests/swarm/run.test.ts's.)
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../shared/models/config.ts';
import { paramLayout, type ParamLayout } from '../../shared/models/layout.ts';
import { Rng, freshSeed } from '../../shared/rng.ts';
import { ADAMW_CPU_WASM } from '../../shared/train/adamw-cpu-wasm.ts';
import { CpuAdamW } from '../../shared/train/adamw-cpu.ts';
import { assembleWat, KERNELS, wasmModule } from '../../shared/assemble-wasm.mjs';

const seed = freshSeed();
const rng = new Rng(seed);
const settings = { betas: [0.9, 0.95] as [number, number], eps: 1e-8, weight_decay: 0.1 };

/** the scalar loop CpuAdamW ran before its SIMD kernel: float64 per element, float32 stores */
class ScalarAdamW {
  steps = 0;
  readonly m: Float32Array;
  readonly v: Float32Array;
  constructor(readonly layout: ParamLayout) {
    this.m = new Float32Array(layout.size);
    this.v = new Float32Array(layout.size);
  }
  step(params: Float32Array, grads: Float32Array, lr: number, gradScale: number, out: Float32Array = params): void {
    const t = ++this.steps;
    const [b1, b2] = settings.betas;
    const stepSize = Math.fround(lr / (1 - b1 ** t));
    const bc2Sqrt = Math.fround(Math.sqrt(1 - b2 ** t));
    const { m, v } = this;
    for (const p of this.layout.params) {
      const decay = p.decay ? Math.fround(1 - lr * settings.weight_decay) : 1;
      for (let i = p.offset, end = p.offset + p.numel; i < end; i++) {
        const g = grads[i] * gradScale;
        const w = params[i] * decay;
        const mi = (m[i] = b1 * m[i] + (1 - b1) * g);
        const vi = (v[i] = b2 * v[i] + (1 - b2) * g * g);
        out[i] = w - (stepSize * mi) / (Math.sqrt(vi) / bc2Sqrt + settings.eps);
      }
    }
  }
}

/** the first element whose bits differ, or -1 */
function firstDiff(a: Float32Array, b: Float32Array): number {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

const layouts = {
  // n_embd 161: tensors at odd offsets, the MLP's over 65,536 elements (one staging block)
  gpt: paramLayout(parseModelConfig({ model: 'gpt', vocab_size: 89, block_size: 16, n_layer: 2, n_head: 7, n_embd: 161 })),
  lstm: paramLayout(parseModelConfig({ model: 'lstm', vocab_size: 37, embed_size: 23, hidden_size: 131, num_layers: 2 })),
};

describe(`CpuAdamW's SIMD loop (seed ${seed})`, () => {
  for (const [name, layout] of Object.entries(layouts)) {
    it(`${name} (${layout.size} parameters): weights and moments bit for bit the scalar loop's, over 4 steps, in place and into another array`, () => {
      expect(layout.params.some((p) => p.numel > 65_536)).toBe(true);
      expect(layout.params.some((p) => p.offset % 2 === 1)).toBe(true);
      const simd = new CpuAdamW(layout, settings);
      const ref = new ScalarAdamW(layout);
      const a = Float32Array.from({ length: layout.size }, () => rng.normal() * 0.02);
      const b = Float32Array.from(a);
      for (let t = 0; t < 4; t++) {
        // gradients across magnitudes, with zeros; a clip scale and lr that change per step
        const g = Float32Array.from({ length: layout.size }, () => (rng.next() < 0.05 ? 0 : rng.normal() * 10 ** (rng.int(6) - 5)));
        const lr = 1e-3 * (1 + t);
        const scale = t === 2 ? 0.37 : 1 / (t + 1);
        if (t === 1) {
          const out = new Float32Array(layout.size).fill(NaN);
          const before = Float32Array.from(a);
          simd.step(a, g, lr, scale, out);
          expect(firstDiff(a, before)).toBe(-1);
          a.set(out);
        } else simd.step(a, g, lr, scale);
        ref.step(b, g, lr, scale);
        expect(firstDiff(a, b), `weights after step ${t + 1}`).toBe(-1);
        expect(firstDiff(simd.exp_avg, ref.m), `exp_avg after step ${t + 1}`).toBe(-1);
        expect(firstDiff(simd.exp_avg_sq, ref.v), `exp_avg_sq after step ${t + 1}`).toBe(-1);
      }
      expect(simd.steps).toBe(4);
    });
  }

  it('two optimizers share no state; load() restores the moments', () => {
    const layout = layouts.lstm;
    const x = new CpuAdamW(layout, settings);
    const y = new CpuAdamW(layout, settings);
    x.step(new Float32Array(layout.size), new Float32Array(layout.size).fill(1), 1e-3);
    expect(x.exp_avg.every((e) => e > 0)).toBe(true);
    expect(y.exp_avg.every((e) => e === 0)).toBe(true);
    y.load({ step: 1, exp_avg: x.exp_avg, exp_avg_sq: x.exp_avg_sq });
    expect(firstDiff(y.exp_avg_sq, x.exp_avg_sq)).toBe(-1);
    expect(y.steps).toBe(1);
  });

  it('loads the bytes shared/assemble-wasm.mjs makes of adamw-cpu.wat (run it after editing the .wat)', async () => {
    const kernel = KERNELS.find((k) => k.name === 'ADAMW_CPU_WASM')!;
    const bytes = await assembleWat(kernel.wat);
    expect(readFileSync(new URL(`../../${kernel.out}`, import.meta.url), 'utf8')).toBe(wasmModule(kernel, bytes));
    expect(Buffer.from(ADAMW_CPU_WASM, 'base64').equals(Buffer.from(bytes))).toBe(true);
  });
});
