// Training on one worker, on a given Gpu (isomorphic: no Node imports; checkpoints are written through a
// callback). Per optimizer step `s` (0-based iteration; "step N" in messages is 1-based, N = s + 1, the step
// number the checkpoint after it carries):
//   for micro in 0..accum-1: batch = dataset.batch('train', seed, s·accum + micro, B, T) → loss, grads (GPU)
//   grads are summed on the host, clipGrads(sum, grad_clip, accum) gives the norm and gradScale, the sum is
//   written into the GPU grad buffers and GpuAdamW.step(learningRate(s), gradScale) updates the weights.
// Before anything is allocated, the step's GPU memory estimate (shared/models/memory.ts) is checked against the
// device: a buffer over its per-buffer limit, or a total over what it can plausibly hold, is refused by name.
// A non-finite loss, gradient, eval loss or weight stops the run with a TrainingDivergedError naming the step
// and the last good checkpoint; no checkpoint of the bad state is written (weights are checked before a write).
import type { CharTokenizer } from '../../shared/data/tokenizer.ts';
import type { TokenDataset, Batch } from '../../shared/data/dataset.ts';
import type { Checkpoint, OptimizerSettings, OptimizerState } from '../../shared/models/checkpoint.ts';
import { configJson, isGpt, type ModelConfig } from '../../shared/models/config.ts';
import { initParams } from '../../shared/models/init.ts';
import { checkDeviceFits, estimateStepMemory, type DeviceCapacity } from '../../shared/models/memory.ts';
import { clipGrads, describeNonFinite } from '../../shared/train/clip.ts';
import type { RunConfig } from '../../shared/train/run-config.ts';
import { learningRate } from '../../shared/train/schedule.ts';
import { GptModel } from '../models/gpt.ts';
import { RecurrentModel } from '../models/recurrent.ts';
import type { Gpu } from '../runtime/gpu.ts';
import { GpuAdamW } from './optimizer.ts';

export interface StepReport {
  /** optimizer steps done after this one (1-based step number) */
  step: number;
  maxSteps: number;
  /** mean training loss over the step's micro-batches */
  loss: number;
  lr: number;
  /** global gradient norm of the mean gradient, before clipping */
  gradNorm: number;
  /** tokens this step trained on / its wall time */
  tokensPerSec: number;
  ms: number;
}

export interface EvalReport {
  step: number;
  valLoss: number;
}

export interface TrainerOptions {
  gpu: Gpu;
  config: RunConfig;
  dataset: TokenDataset;
  tokenizer: CharTokenizer;
  /** continue from this checkpoint (weights, step) and its optimizer state (moments) */
  resume?: { checkpoint: Checkpoint; optimizer?: OptimizerState };
  onStep?: (r: StepReport) => void;
  onEval?: (r: EvalReport) => void;
  /** persist a checkpoint; returns where it went (a path, a key) for messages */
  saveCheckpoint?: (ckpt: Omit<Checkpoint, 'gradswarm_version'>, state: OptimizerState) => Promise<string>;
  onCheckpoint?: (where: string, step: number) => void;
  /** a clock in ms (performance.now by default) */
  now?: () => number;
  /**
   * bytes of GPU memory the device can plausibly hold, for the check before training (shared/models/memory.ts);
   * default: the browser's navigator.deviceMemory where it reports one, else only the per-buffer limits are checked
   */
  memoryBytes?: number;
}

export interface TrainResult {
  /** steps done at the end (max_steps) */
  step: number;
  startStep: number;
  firstLoss?: number;
  lastLoss?: number;
  /** val loss of the first and the last eval */
  firstValLoss?: number;
  lastValLoss?: number;
  lastCheckpoint?: string;
  /** mean tokens/s over the run's steps */
  tokensPerSec: number;
}

/** training stopped on a non-finite value: `step` is the 1-based step that went bad */
export class TrainingDivergedError extends Error {
  constructor(
    message: string,
    readonly step: number,
    readonly lastCheckpoint: string | undefined,
  ) {
    super(message);
    this.name = 'TrainingDivergedError';
  }
}

/** what a checkpoint's metadata records of the optimizer: torch's AdamW settings plus the schedule and clipping */
export function optimizerSettings(c: RunConfig): OptimizerSettings {
  const o = c.optim;
  return {
    name: 'adamw',
    lr: o.lr,
    betas: [o.betas[0], o.betas[1]],
    eps: o.eps,
    weight_decay: o.weight_decay,
    min_lr: o.min_lr,
    warmup_iters: o.warmup_iters,
    lr_decay_iters: o.lr_decay_iters,
    grad_clip: o.grad_clip,
    grad_accum_steps: o.grad_accum_steps,
  };
}

/** the models the trainer steps */
export type TrainableModel = GptModel | RecurrentModel;

export const createModel = (gpu: Gpu, c: ModelConfig): TrainableModel => (isGpt(c) ? new GptModel(gpu, c) : new RecurrentModel(gpu, c));

/**
 * What the device can hold: its per-buffer limits, and in all `memoryBytes` when given, else the browser's
 * navigator.deviceMemory (GiB of RAM, rounded; Chrome reports at most 8): software and integrated adapters draw on
 * that memory, and a page cannot use more. WebGPU does not tell a discrete GPU's memory; Node has no such hint.
 */
export function deviceCapacity(limits: Pick<GPUSupportedLimits, 'maxStorageBufferBindingSize' | 'maxBufferSize'>, memoryBytes?: number): DeviceCapacity {
  const cap: DeviceCapacity = { maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize, maxBufferSize: limits.maxBufferSize };
  const gib = (globalThis.navigator as (Navigator & { deviceMemory?: number }) | undefined)?.deviceMemory;
  if (memoryBytes !== undefined) return { ...cap, memoryBytes, memorySource: 'as configured' };
  if (typeof gib === 'number' && gib > 0) return { ...cap, memoryBytes: gib * 2 ** 30, memorySource: `the browser reports ${gib} GiB of device memory` };
  return cap;
}

/**
 * Forward and backward of each micro-batch, their gradients summed on the host into `sum` (zeroed first).
 * Returns the losses, stopping after the first non-finite one (then `sum` is partial and must not be applied).
 */
export async function accumulateGrads(model: TrainableModel, batches: Pick<Batch, 'idx' | 'targets' | 'B' | 'T'>[], sum: Float32Array): Promise<number[]> {
  sum.fill(0);
  const losses: number[] = [];
  for (const b of batches) {
    const { loss, grads } = await model.lossAndGrads(b.idx, b.targets, b.B, b.T);
    losses.push(loss);
    if (!Number.isFinite(loss)) break;
    for (let i = 0; i < sum.length; i++) sum[i] += grads[i];
  }
  return losses;
}

/** the summed gradient into the GPU grad buffers, one AdamW step (gradScale from clipGrads), then a wait for the GPU */
export async function applyGrads(gpu: Gpu, model: TrainableModel, opt: GpuAdamW, sum: Float32Array, lr: number, gradScale: number): Promise<void> {
  model.params.setGrads(sum);
  opt.step(lr, gradScale);
  await gpu.sync();
}

const allFinite = (a: Float32Array): boolean => {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return false;
  return true;
};

export async function train(o: TrainerOptions): Promise<TrainResult> {
  const { gpu, config, dataset, tokenizer } = o;
  const { model: mc, data, optim, train: tc } = config;
  const now = o.now ?? (() => performance.now());
  if (tokenizer.size > mc.vocab_size) throw new Error(`the corpus has ${tokenizer.size} symbols but model.vocab_size is ${mc.vocab_size}`);
  const B = data.batch_size;
  const T = data.block_size;
  const accum = optim.grad_accum_steps;
  dataset.windows('train', T); // throws a clear error when T does not fit the split
  checkDeviceFits(estimateStepMemory(mc, B, T), deviceCapacity(gpu.limits, o.memoryBytes)); // before any allocation

  const model = createModel(gpu, mc);
  const opt = new GpuAdamW(gpu, model.params, optim);
  const size = model.params.layout.size;
  let step = 0;
  let lastCheckpoint: string | undefined;
  try {
    if (o.resume) {
      const { checkpoint: ck, optimizer: st } = o.resume;
      if (configJson(ck.config) !== configJson(mc)) {
        throw new Error(`cannot resume: the checkpoint's model config ${configJson(ck.config)} differs from the run's ${configJson(mc)}`);
      }
      if (JSON.stringify(ck.tokenizer.vocab) !== JSON.stringify(tokenizer.vocab)) throw new Error('cannot resume: the checkpoint was trained on a different vocabulary (corpus)');
      if (!st) throw new Error(`cannot resume: the checkpoint at step ${ck.step} has no optimizer state file beside it`);
      model.setParams(ck.params);
      opt.load(st);
      step = ck.step;
    } else {
      model.setParams(initParams(mc, tc.seed));
    }
    const startStep = step;
    const result: TrainResult = { step, startStep, tokensPerSec: 0 };
    const evalSet: Batch[] = tc.eval_interval > 0 ? dataset.evalBatches(tc.eval_batches, B, T) : [];

    const evaluate = async (at: number) => {
      let s = 0;
      for (const b of evalSet) s += await model.loss(b.idx, b.targets, b.B, b.T); // forward only
      const valLoss = s / evalSet.length;
      if (!Number.isFinite(valLoss)) {
        throw new TrainingDivergedError(
          `validation loss became ${valLoss} at step ${at}; no checkpoint of this state was written; last good checkpoint: ${lastCheckpoint ?? 'none'}`,
          at,
          lastCheckpoint,
        );
      }
      result.firstValLoss ??= valLoss;
      result.lastValLoss = valLoss;
      o.onEval?.({ step: at, valLoss });
    };

    const checkpoint = async (at: number) => {
      if (!o.saveCheckpoint) return;
      const params = await model.params.get();
      if (!allFinite(params)) {
        throw new TrainingDivergedError(
          `weights became non-finite after step ${at}; no checkpoint of this state was written; last good checkpoint: ${lastCheckpoint ?? 'none'}`,
          at,
          lastCheckpoint,
        );
      }
      const st = await opt.state();
      const where = await o.saveCheckpoint({ config: mc, params, tokenizer, step: at, optimizer: optimizerSettings(config) }, { step: at, exp_avg: st.exp_avg, exp_avg_sq: st.exp_avg_sq });
      lastCheckpoint = where;
      result.lastCheckpoint = where;
      o.onCheckpoint?.(where, at);
    };

    if (evalSet.length && step === 0) await evaluate(0);
    const sum = new Float32Array(size);
    let tokens = 0;
    let trainMs = 0;
    while (step < tc.max_steps) {
      const t0 = now();
      const n = step + 1; // the step being taken, 1-based
      const lr = learningRate(step, optim);
      const batches = Array.from({ length: accum }, (_, micro) => dataset.batch('train', tc.seed, step * accum + micro, B, T));
      const losses = await accumulateGrads(model, batches, sum);
      const bad = losses.findIndex((l) => !Number.isFinite(l));
      if (bad >= 0) {
        throw new TrainingDivergedError(
          `loss became ${losses[bad]} at step ${n} (micro-batch ${bad + 1} of ${accum}, lr ${lr.toExponential(2)}); training stopped and no checkpoint of this state was written; ` +
            `last good checkpoint: ${lastCheckpoint ?? 'none'}`,
          n,
          lastCheckpoint,
        );
      }
      const lossSum = losses.reduce((a, b) => a + b, 0);
      const clip = clipGrads(sum, optim.grad_clip, accum);
      if (!clip.finite) {
        throw new TrainingDivergedError(
          `gradient became non-finite at step ${n} (loss ${(lossSum / accum).toPrecision(4)}, lr ${lr.toExponential(2)}; ${describeNonFinite(sum, model.params.layout)}); training stopped and no checkpoint of this state was written; ` +
            `last good checkpoint: ${lastCheckpoint ?? 'none'}`,
          n,
          lastCheckpoint,
        );
      }
      await applyGrads(gpu, model, opt, sum, lr, clip.gradScale);
      step = n;
      const ms = now() - t0;
      const stepTokens = B * T * accum;
      tokens += stepTokens;
      trainMs += ms;
      const loss = lossSum / accum;
      result.firstLoss ??= loss;
      result.lastLoss = loss;
      result.step = step;
      result.tokensPerSec = trainMs > 0 ? (tokens * 1000) / trainMs : 0;
      o.onStep?.({ step, maxSteps: tc.max_steps, loss, lr, gradNorm: clip.norm, tokensPerSec: ms > 0 ? (stepTokens * 1000) / ms : 0, ms });
      const last = step === tc.max_steps;
      if (evalSet.length && (step % tc.eval_interval === 0 || last)) await evaluate(step);
      if ((tc.checkpoint_interval > 0 && step % tc.checkpoint_interval === 0) || last) await checkpoint(step);
    }
    return result;
  } finally {
    opt.release();
    model.release();
  }
}
