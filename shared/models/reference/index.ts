// The CPU reference model (float64) of every family: whole-model loss and gradients in the flat layout.
// The GPU models are tested against these; these are tested against finite differences.
import { shapeStr, type FloatArray, type HostTensor } from '../../tensor.ts';
import { isGpt, type ModelConfig } from '../config.ts';
import { paramLayout } from '../layout.ts';
import { gptLoss } from './gpt.ts';
import { recurrentLoss } from './recurrent.ts';

/** targets equal to this add nothing to the loss (F.cross_entropy's ignore_index, as nanoGPT) */
export const IGNORE_INDEX = -1;

/** (B, T) from idx and targets, checked: int tensors of one 2-D shape, ids in [0, V), targets in [0, V) or -1, T ≤ block_size */
export function batchDims(config: ModelConfig, idx: HostTensor, targets: HostTensor): { B: number; T: number } {
  const V = config.vocab_size;
  if (!(idx.data instanceof Int32Array) || !(targets.data instanceof Int32Array)) throw new Error('batch: idx and targets must be integer tensors');
  if (idx.shape.length !== 2) throw new Error(`batch: idx must be (B, T), got ${shapeStr(idx.shape)}`);
  if (shapeStr(idx.shape) !== shapeStr(targets.shape)) throw new Error(`batch: idx is ${shapeStr(idx.shape)} but targets is ${shapeStr(targets.shape)}: they must match`);
  const [B, T] = idx.shape;
  if (B < 1 || T < 1) throw new Error(`batch: idx is ${shapeStr(idx.shape)}: B and T must be at least 1`);
  if (isGpt(config) && T > config.block_size) throw new Error(`batch: T = ${T} exceeds block_size ${config.block_size}`);
  const bad = (a: Int32Array, ok: (v: number) => boolean) => a.findIndex((v) => !ok(v));
  const i = bad(idx.data, (v) => v >= 0 && v < V);
  if (i >= 0) throw new Error(`batch: idx[${Math.floor(i / T)}, ${i % T}] = ${idx.data[i]} is out of range [0, ${V})`);
  const t = bad(targets.data, (v) => (v >= 0 && v < V) || v === IGNORE_INDEX);
  if (t >= 0) throw new Error(`batch: targets[${Math.floor(t / T)}, ${t % T}] = ${targets.data[t]} is out of range [0, ${V}) (or ${IGNORE_INDEX} to ignore)`);
  return { B, T };
}

function run(config: ModelConfig, params: FloatArray, idx: HostTensor, targets: HostTensor, grads?: Float64Array): number {
  const layout = paramLayout(config);
  if (params.length !== layout.size) throw new Error(`${config.model} model has ${layout.size} parameters but the array has ${params.length}`);
  const { B, T } = batchDims(config, idx, targets);
  const p = Float64Array.from(params);
  const i = idx.data as Int32Array;
  const tg = targets.data as Int32Array;
  return isGpt(config) ? gptLoss(config, layout, p, i, tg, B, T, grads) : recurrentLoss(config, layout, p, i, tg, B, T, grads);
}

/** mean cross entropy of next-token prediction over targets ≠ -1 (NaN when every target is ignored, as PyTorch) */
export const modelLoss = (config: ModelConfig, params: FloatArray, idx: HostTensor, targets: HostTensor): number => run(config, params, idx, targets);

/** the loss and its gradient with respect to every parameter, in the same flat layout */
export function modelLossAndGrads(config: ModelConfig, params: FloatArray, idx: HostTensor, targets: HostTensor): { loss: number; grads: Float64Array } {
  const grads = new Float64Array(paramLayout(config).size);
  const loss = run(config, params, idx, targets, grads);
  return { loss, grads };
}
