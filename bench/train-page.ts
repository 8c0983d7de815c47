// Browser side of `gradswarm bench train`: full training steps of our models (the trainer's own pieces:
// accumulateGrads → clipGrads → applyGrads on a GpuAdamW) and of the same models in tfjs (bench/train-tfjs.ts),
// on the batches Node sends, in one page. Each of our runs opens a Gpu of its own, so its pool starts empty and
// BufferPool.allocatedBytes measures that run alone; tfjs keeps its own device for the page.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-webgpu';
import { openGpu } from '../client/runtime/index.ts';
import { GpuAdamW } from '../client/train/optimizer.ts';
import { accumulateGrads, applyGrads, createModel } from '../client/train/trainer.ts';
import type { ModelConfig } from '../shared/models/config.ts';
import { initParams } from '../shared/models/init.ts';
import { paramLayout } from '../shared/models/layout.ts';
import { clipGrads } from '../shared/train/clip.ts';
import type { OptimConfig } from '../shared/train/schedule.ts';
import { tfjsTrainer } from './train-tfjs.ts';

/** one family's run, as Node asks for it */
export interface TrainBenchArgs {
  config: ModelConfig;
  optim: OptimConfig;
  B: number;
  T: number;
  /** seeds the initial weights (initParams), the same for ours and tfjs */
  seed: number;
  /** (B, T) row-major token ids and targets, one per step (Node treats the first few as warm-up) */
  batches: { idx: number[]; targets: number[] }[];
}

export interface StepRun {
  params: number;
  /** wall time of each step, warm-up included, ms */
  ms: number[];
  losses: number[];
}

/** BufferPool.allocatedBytes split as shared/models/memory.ts estimates it */
export interface MemoryMeasured {
  weights: number;
  grads: number;
  optimizer: number;
  activations: number;
  /** allocatedBytes after each step */
  afterStep: number[];
}

export interface OursRun extends StepRun {
  memory: MemoryMeasured;
  /** dispatches and submits of the last step */
  dispatches: number;
  submits: number;
}

export interface TfjsRun extends StepRun {
  /** tf.memory() after the last step: bytes of live tensors (weights, Adam's moments), and what the webgpu backend
   * holds on the GPU (numBytesInGPU: live tensors' buffers; numBytesAllocatedInGPU: with its free pool) */
  liveBytes: number;
  gpuBytes?: number;
  gpuAllocatedBytes?: number;
}

const batchArrays = (b: TrainBenchArgs['batches'][number]) => ({ idx: Int32Array.from(b.idx), targets: Int32Array.from(b.targets) });

let tfReady: Promise<void> | null = null;
const startTfjs = () =>
  (tfReady ??= (async () => {
    if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs could not start its webgpu backend');
    await tf.ready();
  })());

const api = {
  async info() {
    const g = await openGpu(navigator.gpu);
    const info = { adapter: g.adapterName, fallback: g.isFallback, cores: navigator.hardwareConcurrency, tfjs: tf.version_core };
    g.destroy();
    return info;
  },

  /** our model, trained as the trainer does it (fixed lr: the schedule is not what is timed) */
  async ours(a: TrainBenchArgs): Promise<OursRun> {
    const g = await openGpu(navigator.gpu);
    try {
      const model = createModel(g, a.config);
      model.setParams(initParams(a.config, a.seed));
      const afterModel = g.pool.allocatedBytes;
      const opt = new GpuAdamW(g, model.params, a.optim);
      const optimizer = g.pool.allocatedBytes - afterModel;
      const sum = new Float32Array(model.params.layout.size);
      const run: OursRun = { params: model.params.layout.size, ms: [], losses: [], memory: { ...model.params.bytes, optimizer, activations: 0, afterStep: [] }, dispatches: 0, submits: 0 };
      await g.sync();
      for (const b of a.batches) {
        const [d0, s0] = [g.dispatches, g.submits];
        const t0 = performance.now();
        const losses = await accumulateGrads(model, [{ B: a.B, T: a.T, ...batchArrays(b) }], sum);
        if (!losses.every(Number.isFinite)) throw new Error(`our ${a.config.model} model: loss ${losses} at step ${run.ms.length + 1}`);
        const clip = clipGrads(sum, a.optim.grad_clip, 1);
        await applyGrads(g, model, opt, sum, a.optim.lr, clip.gradScale);
        run.ms.push(performance.now() - t0);
        run.losses.push(losses[0]);
        run.memory.afterStep.push(g.pool.allocatedBytes);
        [run.dispatches, run.submits] = [g.dispatches - d0, g.submits - s0];
      }
      const m = run.memory;
      m.activations = m.afterStep[m.afterStep.length - 1] - m.weights - m.grads - m.optimizer;
      opt.release();
      model.release();
      return run;
    } finally {
      g.destroy();
    }
  },

  /** the same architecture and weights in tfjs, Adam with the same betas, eps, clipping and lr */
  async tfjs(a: TrainBenchArgs): Promise<TfjsRun> {
    await startTfjs();
    const t = tfjsTrainer(tf, a.config, initParams(a.config, a.seed), a.optim);
    try {
      const layout = paramLayout(a.config);
      if (t.numParams !== layout.size) throw new Error(`the tfjs ${a.config.model} model has ${t.numParams} parameters, ours ${layout.size}`);
      const run: TfjsRun = { params: t.numParams, ms: [], losses: [], liveBytes: 0 };
      for (const b of a.batches) {
        const { idx, targets } = batchArrays(b);
        const t0 = performance.now();
        const loss = await t.step(idx, targets, a.B, a.T, a.optim.lr);
        run.ms.push(performance.now() - t0);
        if (!Number.isFinite(loss)) throw new Error(`the tfjs ${a.config.model} model: loss ${loss} at step ${run.ms.length}`);
        run.losses.push(loss);
      }
      const mem = tf.memory() as tf.MemoryInfo & { numBytesInGPU?: number; numBytesAllocatedInGPU?: number };
      run.liveBytes = mem.numBytes;
      run.gpuBytes = mem.numBytesInGPU;
      run.gpuAllocatedBytes = mem.numBytesAllocatedInGPU;
      return run;
    } finally {
      t.dispose();
    }
  },
};

export type TrainBenchApi = typeof api;
(window as unknown as { gradswarm: typeof api }).gradswarm = api;
