// GpuAdamW (client/train/optimizer.ts) in Node (Dawn) on a tiny gpt layout, against a float64 transcription of
// torch.optim.AdamW with nanoGPT's two param groups (decay / no decay) and torch.nn.utils.clip_grad_norm_:
// several scheduled steps with accumulated, clipped gradients; weight decay exactly where layout.decay says;
// state() / load() resuming bit-identically; refusals that leave the step count alone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openNodeGpu } from '../../client/host/node-gpu.ts';
import { GpuParams } from '../../client/models/params.ts';
import type { Gpu } from '../../client/runtime/gpu.ts';
import { GpuAdamW } from '../../client/train/optimizer.ts';
import { parseModelConfig } from '../../shared/models/config.ts';
import { initParams } from '../../shared/models/init.ts';
import { paramLayout, type ParamLayout } from '../../shared/models/layout.ts';
import { freshSeed, Rng } from '../../shared/rng.ts';
import { clipGrads } from '../../shared/train/clip.ts';
import { learningRate, parseOptimConfig, type OptimConfig } from '../../shared/train/schedule.ts';
import { relError } from '../../shared/ops.ts';

let g: Gpu;
beforeAll(async () => {
  g = await openNodeGpu();
});
afterAll(() => g?.destroy());

const config = parseModelConfig({ model: 'gpt', vocab_size: 13, block_size: 6, n_layer: 2, n_head: 2, n_embd: 8 });
const layout = paramLayout(config);
// a short schedule that passes through warmup, the cosine and the floor in 8 steps; clipping at 0.5 with
// gradients whose mean norm alternates ~0.1–0.3 and ~1.3–4, so half the steps clip
const optim: OptimConfig = parseOptimConfig({ lr: 1e-2, min_lr: 1e-3, warmup_iters: 2, lr_decay_iters: 6, betas: [0.9, 0.95], weight_decay: 0.1, grad_clip: 0.5, grad_accum_steps: 2 });

// GPU results are fp32 elementwise updates of fp32 state: each step adds a few ulps relative to each element's
// own size (param, m, v) and ~lr·1e-7 through the update; the clip and averaging scales are folded into one fp32
// gradScale (one more rounding). No reduction anywhere: after 8 steps the normwise error was ≤ 5e-7 in repeated runs;
// 1e-5 leaves a margin, while a wrong group, bias correction or scale shows at ≥ lr·wd ≈ 1e-3.
const TOL = 1e-5;


/** float64 torch.optim.AdamW (amsgrad=False, foreach off) with param groups, transcribed from _single_tensor_adamw */
class TorchAdamW64 {
  readonly groups: { names: string[]; weight_decay: number }[];
  readonly state = new Map<string, { step: number; exp_avg: Float64Array; exp_avg_sq: Float64Array }>();
  constructor(
    readonly layout: ParamLayout,
    readonly o: OptimConfig,
  ) {
    // nanoGPT configure_optimizers: [{params: decay_params, weight_decay}, {params: nodecay_params, weight_decay: 0.0}]
    this.groups = [
      { names: layout.params.filter((p) => p.decay).map((p) => p.name), weight_decay: o.weight_decay },
      { names: layout.params.filter((p) => !p.decay).map((p) => p.name), weight_decay: 0 },
    ];
  }
  step(params: Float64Array, grads: Float64Array, lr: number): void {
    const [beta1, beta2] = this.o.betas;
    for (const group of this.groups) {
      for (const name of group.names) {
        const param = this.layout.view(params, name);
        const grad = this.layout.view(grads, name);
        let st = this.state.get(name);
        if (!st) this.state.set(name, (st = { step: 0, exp_avg: new Float64Array(param.length), exp_avg_sq: new Float64Array(param.length) }));
        st.step += 1;
        const bc1 = 1 - beta1 ** st.step;
        const bc2 = 1 - beta2 ** st.step;
        const stepSize = lr / bc1;
        const bc2Sqrt = Math.sqrt(bc2);
        for (let i = 0; i < param.length; i++) {
          param[i] *= 1 - lr * group.weight_decay;
          st.exp_avg[i] += (grad[i] - st.exp_avg[i]) * (1 - beta1); // lerp_
          st.exp_avg_sq[i] = st.exp_avg_sq[i] * beta2 + (1 - beta2) * grad[i] * grad[i];
          const denom = Math.sqrt(st.exp_avg_sq[i]) / bc2Sqrt + this.o.eps;
          param[i] -= (stepSize * st.exp_avg[i]) / denom;
        }
      }
    }
  }
  flat(which: 'exp_avg' | 'exp_avg_sq'): Float64Array {
    const out = new Float64Array(this.layout.size);
    for (const p of this.layout.params) out.set(this.state.get(p.name)![which], p.offset);
    return out;
  }
}

/** torch.nn.utils.clip_grad_norm_ in float64, in place; returns the total norm */
function clipGradNorm64(grads: Float64Array, maxNorm: number): number {
  let s = 0;
  for (const x of grads) s += x * x;
  const total = Math.sqrt(s);
  const coef = Math.min(1, maxNorm / (total + 1e-6));
  for (let i = 0; i < grads.length; i++) grads[i] *= coef;
  return total;
}

// GpuParams has weight/grad tensors and set(), but no setter for grads nor reader for weights: go by tensor
function writeGrads(params: GpuParams, flat: Float32Array): void {
  g.flush();
  for (const p of layout.params) {
    const v = layout.view(flat, p.name);
    g.device.queue.writeBuffer(params.grad(p.name).buffer, 0, v.buffer, v.byteOffset, v.byteLength);
  }
}
async function readWeights(params: GpuParams): Promise<Float32Array> {
  const out = new Float32Array(layout.size);
  for (const p of layout.params) out.set((await g.read(params.weight(p.name))) as Float32Array, p.offset);
  return out;
}

/** starting weights: GPT-2 init plus noise, so biases and norms are not at 0 / 1 exactly */
function startWeights(rng: Rng): Float32Array {
  const w = initParams(config, rng.int(2 ** 31));
  for (let i = 0; i < w.length; i++) w[i] += rng.normal() * 0.05;
  return w;
}

/** one micro-step's gradient: each tensor its own size, the whole step scaled by stepScale */
function microGrads(rng: Rng, stepScale: number): Float32Array {
  const out = new Float32Array(layout.size);
  for (const p of layout.params) {
    const std = stepScale * 0.02 * (0.2 + rng.next());
    const v = layout.view(out, p.name);
    for (let i = 0; i < v.length; i++) v[i] = rng.normal() * std;
  }
  return out;
}

/** the summed gradient of grad_accum_steps micro-steps, as the GPU buffers would hold it (fp32 adds) */
function accumulated(rng: Rng, it: number): Float32Array {
  // even steps: mean norm ~0.1–0.3, under grad_clip; odd steps ~1.3–4, clipped
  const stepScale = it % 2 ? 3 + 6 * rng.next() : 0.3 + 0.3 * rng.next();
  const sum = new Float32Array(layout.size);
  for (let k = 0; k < optim.grad_accum_steps; k++) {
    const m = microGrads(rng, stepScale);
    for (let i = 0; i < sum.length; i++) sum[i] += m[i];
  }
  return sum;
}

function expectClose(what: string, gpu: Float32Array, ref: Float64Array, seed: number): void {
  for (const p of layout.params) {
    const e = relError(layout.view(gpu, p.name), layout.view(ref, p.name));
    expect(e, `${what} ${p.name}: normwise error ${e.toExponential(2)} (seed ${seed})`).toBeLessThan(TOL);
  }
}

describe('GpuAdamW', () => {
  it('follows float64 torch AdamW with decay / no-decay groups over scheduled, clipped, accumulated steps, and resumes bit-identically', async () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const w0 = startWeights(rng);
    const params = new GpuParams(g, config);
    params.set(w0);
    const opt = new GpuAdamW(g, params, optim);
    const ref = new TorchAdamW64(layout, optim);
    const want = Float64Array.from(w0);
    const steps = 8;
    const grads = Array.from({ length: steps }, (_, it) => accumulated(rng, it));
    let clipped = 0;
    let bytes = 0;
    let resumed: { params: GpuParams; opt: GpuAdamW } | null = null;
    for (let it = 0; it < steps; it++) {
      const lr = learningRate(it, optim);
      // GPU: the summed gradient in the grad buffers, clip and averaging folded into gradScale
      writeGrads(params, grads[it]);
      const c = clipGrads(grads[it], optim.grad_clip, optim.grad_accum_steps);
      expect(c.finite).toBe(true);
      if (c.scale < 1) clipped++;
      opt.step(lr, c.gradScale);
      // reference: nanoGPT's loss / accum per micro-step (the mean gradient), clip_grad_norm_, optimizer.step()
      const mean = Float64Array.from(grads[it], (x) => x / optim.grad_accum_steps);
      expect(clipGradNorm64(mean, optim.grad_clip)).toBeCloseTo(c.norm, 12);
      ref.step(want, mean, lr);
      if (resumed) {
        writeGrads(resumed.params, grads[it]);
        resumed.opt.step(lr, c.gradScale);
      }
      // steps allocate nothing (counted afresh once the resumed copy exists)
      if (it === 0 || it === 4) bytes = g.pool.allocatedBytes;
      else expect(g.pool.allocatedBytes, `step ${it + 1} allocated`).toBe(bytes);
      if (it === 3) {
        // resume after 4 steps: fresh GpuParams with the weights read back, a fresh optimizer loaded from state()
        const s = await opt.state();
        expect(s.step).toBe(4);
        const p2 = new GpuParams(g, config);
        p2.set(await readWeights(params));
        const o2 = new GpuAdamW(g, p2, optim);
        o2.load(s);
        expect(o2.steps).toBe(4);
        const back = await o2.state();
        expect(back.exp_avg.every((x, i) => Object.is(x, s.exp_avg[i]))).toBe(true);
        expect(back.exp_avg_sq.every((x, i) => Object.is(x, s.exp_avg_sq[i]))).toBe(true);
        resumed = { params: p2, opt: o2 };
      }
    }
    expect(clipped, `steps that clipped (seed ${seed})`).toBe(steps / 2);
    const got = await readWeights(params);
    const s = await opt.state();
    expect(s.step).toBe(steps);
    expect(ref.state.get(layout.params[0].name)!.step).toBe(steps);
    expectClose('param', got, want, seed);
    expectClose('exp_avg', s.exp_avg, ref.flat('exp_avg'), seed);
    expectClose('exp_avg_sq', s.exp_avg_sq, ref.flat('exp_avg_sq'), seed);
    // the resumed run: same kernels on the same inputs, so the same bits
    const r = resumed!;
    const [got2, s2] = [await readWeights(r.params), await r.opt.state()];
    expect(s2.step).toBe(steps);
    expect(got2.every((x, i) => Object.is(x, got[i])), 'resumed params').toBe(true);
    expect(s2.exp_avg.every((x, i) => Object.is(x, s.exp_avg[i])), 'resumed exp_avg').toBe(true);
    expect(s2.exp_avg_sq.every((x, i) => Object.is(x, s.exp_avg_sq[i])), 'resumed exp_avg_sq').toBe(true);
    opt.release();
    params.release();
    r.opt.release();
    r.params.release();
  });

  it('decays exactly the layout.decay tensors (matmul weights), never biases, norms or embeddings', async () => {
    const rng = new Rng(freshSeed());
    const w0 = startWeights(rng);
    const params = new GpuParams(g, config);
    params.set(w0);
    writeGrads(params, new Float32Array(layout.size)); // zero grads: the update term is 0 / (0 + eps) = 0
    const opt = new GpuAdamW(g, params, { betas: [0.9, 0.99], eps: 1e-8, weight_decay: 0.5 });
    opt.step(0.1);
    const got = await readWeights(params);
    const factor = Math.fround(1 - 0.1 * 0.5);
    const decayed = layout.params.filter((p) => p.decay).map((p) => p.name);
    expect(decayed).toEqual(layout.params.filter((p) => /\.(c_attn|c_proj|c_fc)\.weight$/.test(p.name)).map((p) => p.name));
    for (const p of layout.params) {
      const [a, b] = [layout.view(got, p.name), layout.view(w0, p.name)];
      const want = p.decay ? b.map((x) => Math.fround(x * factor)) : b;
      expect(a.every((x, i) => Object.is(x, want[i])), `${p.name} ${p.decay ? 'decayed by 1 − lr·wd' : 'untouched'}`).toBe(true);
    }
    opt.release();
    params.release();
  });

  it('refuses a bad step or state without advancing, with clear messages', async () => {
    const params = new GpuParams(g, config);
    const opt = new GpuAdamW(g, params, optim);
    expect(() => opt.step(-1)).toThrow(/invalid learning rate -1/);
    expect(() => opt.step(1e-3, NaN)).toThrow(/AdamW step 1: gradScale NaN is not finite/);
    expect(() => opt.step(1e-3, clipGrads(new Float32Array([NaN]), 1).gradScale)).toThrow(/not finite/);
    expect(opt.steps).toBe(0);
    const n = layout.size;
    expect(() => opt.load({ step: 2, exp_avg: new Float32Array(n - 1), exp_avg_sq: new Float32Array(n) })).toThrow(
      new RegExp(`AdamW state: exp_avg must be a Float32Array of ${n} elements \\(this gpt model's parameters\\), got ${n - 1}`),
    );
    expect(() => opt.load({ step: 1.5, exp_avg: new Float32Array(n), exp_avg_sq: new Float32Array(n).fill(-1) })).toThrow(/step 1.5 must be an integer >= 0; exp_avg_sq holds NaN, Inf or negative/);
    expect(opt.steps).toBe(0);
    expect(() => new GpuAdamW(g, params, { betas: [0.9, 1], eps: 1e-8, weight_decay: 0 })).toThrow(/invalid beta2 1/);
    expect(opt.bytes).toBe(8 * n);
    opt.release();
    params.release();
  });
});
