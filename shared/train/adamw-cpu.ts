// torch.optim.AdamW on the CPU over the flat parameter layout: the coordinator's optimizer (it has no GPU). The
// same update as client/train/optimizer.ts's GpuAdamW and shaders/adamw.wgsl (nanoGPT's two param groups: weight
// decay only on tensors whose layout entry has `decay`; gradients multiplied by gradScale first), computed in
// float64 per element and stored in float32 like the GPU's state, so a swarm and a single worker agree to fp
// rounding. Moments are allocated once; a step allocates nothing.
//
// The loop runs in WebAssembly SIMD (adamw-cpu.wat: the same float64 operations in the same order, bit for bit the
// scalar loop's results; 5.9 → 3.8 ms a step at 1 M parameters, bound by the float64 divisions and square roots).
// The moments live in its memory, made at its size and never grown (growing detaches a memory's old ArrayBuffer, and
// one detached ArrayBuffer slows every typed-array loop in the process); params and grads are staged through it a
// block at a time, and the new params copied out.
import type { ParamLayout } from '../models/layout.ts';
import { checkHyper } from '../reference/adamw.ts';
import { ADAMW_CPU_WASM } from './adamw-cpu-wasm.ts';
import type { OptimConfig } from './schedule.ts';

interface Kernel {
  step(p: number, g: number, m: number, v: number, n: number, gradScale: number, decay: number, b1: number, b2: number, omb1: number, omb2: number, stepSize: number, bc2Sqrt: number, eps: number): void;
}

/** elements staged at a time: params and grads, 256 KiB each, stay in a core's L2 cache between the copies and the pass */
const BLOCK = 1 << 16;
const PAGE = 1 << 16;
/** wasm32 addresses 4 GiB */
const MAX_PAGES = 1 << 16;
let compiled: WebAssembly.Module | undefined;

export class CpuAdamW {
  steps = 0;
  /** the moments, in the kernel's memory (after the two staging blocks) */
  readonly exp_avg: Float32Array<ArrayBuffer>;
  readonly exp_avg_sq: Float32Array<ArrayBuffer>;
  private readonly k: Kernel;
  private readonly stageP: Float32Array<ArrayBuffer>;
  private readonly stageG: Float32Array<ArrayBuffer>;

  constructor(
    readonly layout: ParamLayout,
    private readonly settings: Pick<OptimConfig, 'betas' | 'eps' | 'weight_decay'>,
  ) {
    const n = layout.size;
    const pages = Math.ceil((8 * BLOCK + 8 * n) / PAGE);
    if (pages > MAX_PAGES) throw new Error(`AdamW: ${n} parameters are too many for the CPU optimizer's moments (wasm32: at most ${Math.floor((MAX_PAGES * PAGE - 8 * BLOCK) / 8)})`);
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    compiled ??= new WebAssembly.Module(Uint8Array.from(atob(ADAMW_CPU_WASM), (c) => c.charCodeAt(0)));
    this.k = new WebAssembly.Instance(compiled, { adamw: { memory } }).exports as unknown as Kernel;
    this.stageP = new Float32Array(memory.buffer, 0, BLOCK);
    this.stageG = new Float32Array(memory.buffer, 4 * BLOCK, BLOCK);
    this.exp_avg = new Float32Array(memory.buffer, 8 * BLOCK, n);
    this.exp_avg_sq = new Float32Array(memory.buffer, 8 * BLOCK + 4 * n, n);
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
    const mAt = 8 * BLOCK;
    const vAt = mAt + 4 * n;
    for (const p of this.layout.params) {
      const decay = p.decay ? Math.fround(1 - lr * weight_decay) : 1;
      for (let i = p.offset, end = p.offset + p.numel; i < end; i += BLOCK) {
        const len = Math.min(BLOCK, end - i);
        this.stageP.set(params.subarray(i, i + len));
        this.stageG.set(grads.subarray(i, i + len));
        this.k.step(0, 4 * BLOCK, mAt + 4 * i, vAt + 4 * i, len, gradScale, decay, b1, b2, 1 - b1, 1 - b2, stepSize, bc2Sqrt, eps);
        out.set(len === BLOCK ? this.stageP : this.stageP.subarray(0, len), i);
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
