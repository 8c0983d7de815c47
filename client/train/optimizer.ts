// torch.optim.AdamW on the GPU over a model's GpuParams, with nanoGPT's two param groups: weight decay on the
// tensors whose layout entry has `decay` (matmul weights), none on biases, norms and embeddings.
// Owns exp_avg and exp_avg_sq, one GPU buffer per parameter tensor (zeros at first, as torch's lazy state),
// allocated once: a step records one `adamw` dispatch per tensor and allocates nothing.
//
// Gradient accumulation and clipping: the caller sums the gradients of grad_accum_steps micro-steps (each the
// gradient of its own mean loss) into GpuParams' grad buffers, reads them back, computes
// clipGrads(grads, grad_clip, grad_accum_steps) (shared/train/clip.ts), and calls
// step(lr, result.gradScale), where gradScale = clipScale / grad_accum_steps: the kernel multiplies each
// gradient by it before the moments, so the update is torch's on the clipped mean gradient. The grads are read
// only: zeroing them before the next step is the caller's.
import type { OptimConfig } from '../../shared/train/schedule.ts';
import { checkHyper } from '../../shared/reference/adamw.ts';
import type { ParamLayout } from '../../shared/models/layout.ts';
import type { GpuParams } from '../models/params.ts';
import { adamw } from '../ops/adamw.ts';
import type { Gpu, GpuTensor } from '../runtime/gpu.ts';

/** resumable optimizer state: the moments flat in the parameter layout (as torch's per-tensor state, concatenated) */
export interface AdamWState {
  /** optimizer steps taken (torch's state['step']; the bias corrections of the next step use step + 1) */
  step: number;
  exp_avg: Float32Array;
  exp_avg_sq: Float32Array;
}

export type AdamWSettings = Pick<OptimConfig, 'betas' | 'eps' | 'weight_decay'>;

export class GpuAdamW {
  readonly layout: ParamLayout;
  /** optimizer steps taken so far (torch's state['step']) */
  steps = 0;
  private readonly m = new Map<string, GpuTensor>();
  private readonly v = new Map<string, GpuTensor>();

  constructor(
    private readonly g: Gpu,
    private readonly params: GpuParams,
    private readonly settings: AdamWSettings,
  ) {
    this.layout = params.layout;
    checkHyper(this.hyper(0, 1));
    for (const p of this.layout.params) {
      this.m.set(p.name, g.zeros(p.shape));
      this.v.set(p.name, g.zeros(p.shape));
    }
  }

  private hyper(lr: number, step: number) {
    const { betas, eps, weight_decay } = this.settings;
    return { lr, beta1: betas[0], beta2: betas[1], eps, weightDecay: weight_decay, step };
  }

  /**
   * Record one AdamW step at learning rate `lr` on every parameter tensor (nothing is submitted: the next flush
   * or read does). gradScale multiplies the gradients first (see the header). Throws, without advancing the
   * step count, on a bad lr or a non-finite gradScale (a NaN clip scale from a non-finite gradient lands here).
   */
  step(lr: number, gradScale = 1): void {
    const step = this.steps + 1;
    checkHyper(this.hyper(lr, step));
    if (!Number.isFinite(gradScale)) throw new Error(`AdamW step ${step}: gradScale ${gradScale} is not finite (the gradient norm was NaN or Inf?): step refused`);
    for (const p of this.layout.params) {
      const h = this.hyper(lr, step);
      adamw(this.g, this.params.weight(p.name), this.params.grad(p.name), this.m.get(p.name)!, this.v.get(p.name)!, {
        ...h,
        weightDecay: p.decay ? h.weightDecay : 0,
        gradScale,
      });
    }
    this.steps = step;
  }

  /** the moments read back, flat in the layout (two readbacks through one pooled staging tensor), and the step */
  async state(): Promise<AdamWState> {
    const flat = this.g.tensor([this.layout.size], 'f32', 'optimizer state readback');
    try {
      const gather = async (from: Map<string, GpuTensor>) => {
        for (const p of this.layout.params) this.g.copy(from.get(p.name)!, 0, flat, 4 * p.offset, 4 * p.numel);
        return (await this.g.read(flat)) as Float32Array;
      };
      const exp_avg = await gather(this.m);
      const exp_avg_sq = await gather(this.v);
      return { step: this.steps, exp_avg, exp_avg_sq };
    } finally {
      this.g.release(flat);
    }
  }

  /** resume from a saved state (queue writes, ordered after the work recorded before this call) */
  load(s: AdamWState): void {
    const n = this.layout.size;
    const problems: string[] = [];
    if (!(Number.isInteger(s.step) && s.step >= 0)) problems.push(`step ${s.step} must be an integer >= 0`);
    for (const [k, a] of [['exp_avg', s.exp_avg], ['exp_avg_sq', s.exp_avg_sq]] as const) {
      if (!(a instanceof Float32Array) || a.length !== n) {
        problems.push(`${k} must be a Float32Array of ${n} elements (this ${this.layout.config.model} model's parameters), got ${a?.length ?? 'nothing'}`);
      } else if (k === 'exp_avg' && !a.every(Number.isFinite)) problems.push('exp_avg holds NaN or Inf');
      else if (k === 'exp_avg_sq' && !a.every((x) => Number.isFinite(x) && x >= 0)) problems.push('exp_avg_sq holds NaN, Inf or negative values');
    }
    if (problems.length) throw new Error(`AdamW state: ${problems.join('; ')}`);
    this.g.flush(); // queue writes land at once: submit what is recorded before them first
    for (const p of this.layout.params) {
      for (const [to, from] of [[this.m, s.exp_avg], [this.v, s.exp_avg_sq]] as const) {
        const view = this.layout.view(from, p.name);
        this.g.device.queue.writeBuffer(to.get(p.name)!.buffer, 0, view.buffer, view.byteOffset, view.byteLength);
      }
    }
    this.steps = s.step;
  }

  /** GPU bytes held by the optimizer state (both moments) */
  get bytes(): number {
    return 2 * 4 * this.layout.size;
  }

  /** hand the moment buffers back to the pool */
  release(): void {
    this.g.release(...this.m.values(), ...this.v.values());
    this.m.clear();
    this.v.clear();
  }
}
