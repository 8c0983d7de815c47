// torch.optim.AdamW on the CPU over the flat parameter layout: the coordinator's optimizer (it has no GPU). The
// same update as client/train/optimizer.ts's GpuAdamW and shaders/adamw.wgsl (nanoGPT's two param groups: weight
// decay only on tensors whose layout entry has `decay`; gradients multiplied by gradScale first), computed in
// float64 per element and stored in float32 like the GPU's state, so a swarm and a single worker agree to fp
// rounding. Moments are allocated once; a step allocates nothing.
import type { ParamLayout } from '../models/layout.ts';
import { checkHyper } from '../reference/adamw.ts';
import type { OptimConfig } from './schedule.ts';

export class CpuAdamW {
  steps = 0;
  readonly exp_avg: Float32Array;
  readonly exp_avg_sq: Float32Array;

  constructor(
    readonly layout: ParamLayout,
    private readonly settings: Pick<OptimConfig, 'betas' | 'eps' | 'weight_decay'>,
  ) {
    this.exp_avg = new Float32Array(layout.size);
    this.exp_avg_sq = new Float32Array(layout.size);
  }

  /**
   * one step from `params` with gradient `grads` · gradScale (see shared/train/clip.ts for gradScale), into `out`:
   * `params` itself by default, or another array (the coordinator keeps each version's weights unchanged once published)
   */
  step(params: Float32Array, grads: Float32Array, lr: number, gradScale = 1, out: Float32Array = params): void {
    const n = this.layout.size;
    if (params.length !== n || grads.length !== n || out.length !== n) throw new Error(`AdamW: expected ${n} parameters, gradients and outputs, got ${params.length}, ${grads.length} and ${out.length}`);
    if (!Number.isFinite(gradScale)) throw new Error(`AdamW step ${this.steps + 1}: gradScale ${gradScale} is not finite: step refused`);
    const { betas, eps, weight_decay } = this.settings;
    const t = this.steps + 1;
    checkHyper({ lr, beta1: betas[0], beta2: betas[1], eps, weightDecay: weight_decay, step: t });
    const [b1, b2] = betas;
    // as the GPU kernel: step size and sqrt of the second bias correction in float64, rounded to fp32 once
    const stepSize = Math.fround(lr / (1 - b1 ** t));
    const bc2Sqrt = Math.fround(Math.sqrt(1 - b2 ** t));
    const m = this.exp_avg;
    const v = this.exp_avg_sq;
    for (const p of this.layout.params) {
      const decay = p.decay ? Math.fround(1 - lr * weight_decay) : 1;
      for (let i = p.offset, end = p.offset + p.numel; i < end; i++) {
        const g = grads[i] * gradScale;
        const w = params[i] * decay;
        const mi = (m[i] = b1 * m[i] + (1 - b1) * g);
        const vi = (v[i] = b2 * v[i] + (1 - b2) * g * g);
        out[i] = w - (stepSize * mi) / (Math.sqrt(vi) / bc2Sqrt + eps);
      }
    }
    this.steps = t;
  }

  load(s: { step: number; exp_avg: Float32Array; exp_avg_sq: Float32Array }): void {
    const n = this.layout.size;
    if (s.exp_avg.length !== n || s.exp_avg_sq.length !== n) throw new Error(`AdamW state: expected moments of ${n} elements, got ${s.exp_avg.length} and ${s.exp_avg_sq.length}`);
    this.exp_avg.set(s.exp_avg);
    this.exp_avg_sq.set(s.exp_avg_sq);
    this.steps = s.step;
  }
}
