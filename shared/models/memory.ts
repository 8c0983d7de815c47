// GPU memory of one training step, estimated from (config, B, T) alone, and the check that a device can hold it.
// The estimate replays, in order, the buffers a step of client/models/{gpt,recurrent}.ts and GpuAdamW acquire and
// release, through a model of the buffer pool (client/runtime/pool.ts: buffers recycled by size class, never
// freed), so it predicts BufferPool.allocatedBytes after a step, split four ways:
//   weights     one buffer per parameter tensor
//   grads       one per parameter tensor, plus the flat buffer they are gathered into for the one readback
//   optimizer   AdamW's exp_avg and exp_avg_sq, one each per parameter tensor
//   activations the rest: the batch, what forward keeps for backward, backward's scratch (every size class at
//               its peak count within the step)
// Left out: small scratch inside the kernels (split-K partial sums of matmuls, whose count depends on the adapter;
// layer-norm and attention row partials, sort histograms), the uniform ring of dispatch params, and the readback
// staging buffer (outside the pool). On SwiftShader the estimate came within a few percent of the measurement
// (bench/RESULTS.md, "Training step: tokens/s and memory"; tests/gpu/train-memory.test.ts holds it to 10%).
import { numel, shapeStr } from '../tensor.ts';
import { GATES, isGpt, type GptConfig, type ModelConfig, type RecurrentConfig } from './config.ts';
import { paramLayout } from './layout.ts';

export type MemoryPart = 'weights' | 'grads' | 'optimizer' | 'activations';
export const MEMORY_PARTS: readonly MemoryPart[] = ['weights', 'grads', 'optimizer', 'activations'];

/** one buffer a step holds at some point */
export interface BufferEstimate {
  /** what it holds, with its shape letters, e.g. 'logits (B·T, V)' or 'transformer.wte.weight' */
  name: string;
  shape: number[];
  part: MemoryPart;
  /** bytes asked of the device for this tensor (4 per element, at least 4) */
  bytes: number;
  /** the config fields that make this buffer smaller */
  shrink: string;
}

export interface MemoryEstimate {
  config: ModelConfig;
  B: number;
  T: number;
  /** pool bytes held per part after a step (buffers rounded up to the pool's size classes) */
  bytes: Record<MemoryPart, number>;
  /** everything: what BufferPool.allocatedBytes should read after a step */
  total: number;
  /** every buffer acquired, in order (activations once per acquire, even when the pool recycles one) */
  buffers: BufferEstimate[];
  /** the largest single buffer: it must fit the device's per-buffer limit */
  largest: BufferEstimate;
}

/**
 * The pool's size class of a request: powers of two from 256 bytes, with seven eighth-steps between one power
 * and the next, so a 1.1x request does not take a 2x buffer. client/runtime/pool.ts allocates these.
 */
export function poolSizeClass(bytes: number): number {
  const b = Math.max(256, bytes);
  const p = 2 ** Math.floor(Math.log2(b));
  if (p === b) return b;
  const step = p / 8;
  return Math.ceil(b / step) * step;
}

/** the pool as the estimate replays it: free buffers per size class, bytes allocated per part */
class PoolModel {
  readonly buffers: BufferEstimate[] = [];
  readonly bytes: Record<MemoryPart, number> = { weights: 0, grads: 0, optimizer: 0, activations: 0 };
  private free = new Map<number, number>();
  private live = new Map<string, number>();

  acquire(name: string, shape: number[], part: MemoryPart, shrink: string): void {
    if (this.live.has(name)) throw new Error(`memory estimate: '${name}' acquired twice`);
    const bytes = Math.max(4, 4 * numel(shape));
    const c = poolSizeClass(bytes);
    this.buffers.push({ name: name.replace(/^step\./, ''), shape, part, bytes, shrink });
    this.live.set(name, c);
    const n = this.free.get(c) ?? 0;
    if (n > 0) this.free.set(c, n - 1);
    else this.bytes[part] += c;
  }

  release(...names: string[]): void {
    for (const name of names) {
      const c = this.live.get(name);
      if (c === undefined) throw new Error(`memory estimate: '${name}' released but not held`);
      this.live.delete(name);
      this.free.set(c, (this.free.get(c) ?? 0) + 1);
    }
  }

  /** release every live buffer whose name starts with `prefix` */
  releaseAll(prefix: string): void {
    this.release(...[...this.live.keys()].filter((n) => n.startsWith(prefix)));
  }
}

const MODEL_SHRINK: Record<ModelConfig['model'], string> = {
  gpt: 'model.n_embd or model.n_layer',
  rnn: 'model.hidden_size or model.num_layers',
  lstm: 'model.hidden_size or model.num_layers',
  gru: 'model.hidden_size or model.num_layers',
};
const BATCH = 'data.batch_size or data.block_size';
const HEAD = 'data.batch_size or data.block_size (or the vocabulary: model.vocab_size)';

/** GpuParams (a weight and a grad per tensor, then the flat grads + loss) and GpuAdamW (m and v per tensor) */
function parameters(pool: PoolModel, config: ModelConfig): void {
  const layout = paramLayout(config);
  for (const p of layout.params) {
    const s = MODEL_SHRINK[config.model] + (p.shape[0] === config.vocab_size ? ' (or the vocabulary, model.vocab_size)' : '');
    pool.acquire(p.name, p.shape, 'weights', s);
    pool.acquire(`grad ${p.name}`, p.shape, 'grads', s);
  }
  pool.acquire('flat grads + loss (readback)', [layout.size + 1], 'grads', MODEL_SHRINK[config.model]);
}

function optimizer(pool: PoolModel, config: ModelConfig): void {
  for (const p of paramLayout(config).params) {
    pool.acquire(`exp_avg ${p.name}`, p.shape, 'optimizer', MODEL_SHRINK[config.model]);
    pool.acquire(`exp_avg_sq ${p.name}`, p.shape, 'optimizer', MODEL_SHRINK[config.model]);
  }
}

/** embeddingBackward's sort of the N positions by id and the per-id row ranges (released at its end) */
function embeddingBackward(pool: PoolModel, N: number, V: number): void {
  pool.acquire('step.emb_bwd keys', [N], 'activations', BATCH);
  pool.acquire('step.emb_bwd positions', [N], 'activations', BATCH);
  pool.acquire('step.emb_bwd row ranges', [V, 2], 'activations', 'model.vocab_size');
  pool.releaseAll('step.emb_bwd');
}

/** cross entropy forward and backward on (N, V) logits; leaves lse, loss and dlogits held */
function crossEntropy(pool: PoolModel, N: number, V: number, p: string): void {
  pool.acquire(`${p}lse (B·T)`, [N], 'activations', BATCH);
  pool.acquire(`${p}ce rows (B·T)`, [N], 'activations', BATCH);
  pool.acquire('loss', [], 'activations', '');
  pool.release(`${p}ce rows (B·T)`);
  pool.acquire(`${p}ce scale`, [1], 'activations', '');
  pool.acquire(`${p}dlogits (B·T, V)`, [N, V], 'activations', HEAD);
  pool.release(`${p}ce scale`);
}

/** GptModel.lossAndGrads: every activation and backward tensor is held until the step's end */
function gptStep(pool: PoolModel, c: GptConfig, B: number, T: number): void {
  const { n_embd: C, n_head: nh, n_layer: L, vocab_size: V } = c;
  const N = B * T;
  const hs = C / nh;
  const act = (name: string, shape: number[], shrink = BATCH) => pool.acquire(`step.${name}`, shape, 'activations', shrink);
  const ln = (name: string) => {
    act(`${name} out (B·T, C)`, [N, C]);
    act(`${name} mean (B·T)`, [N]);
    act(`${name} rstd (B·T)`, [N]);
  };
  const lnBackward = (name: string) => act(`${name} dx (B·T, C)`, [N, C]);
  const heads = [B, nh, T, hs];
  act('wte[idx] (B·T, C)', [N, C]);
  act('wpe[t] (B·T, C)', [N, C]);
  act('x (B·T, C)', [N, C]);
  for (let l = 0; l < L; l++) {
    const b = `h.${l}`;
    ln(`${b}.ln_1`);
    act(`${b}.c_attn (B·T, 3C)`, [N, 3 * C]);
    for (const x of ['q', 'k', 'v']) act(`${b}.${x} (B, nh, T, hs)`, heads);
    act(`${b}.attn out (B, nh, T, hs)`, heads);
    act(`${b}.attn lse (B, nh, T)`, [B, nh, T]);
    act(`${b}.y (B·T, C)`, [N, C]);
    act(`${b}.attn.c_proj (B·T, C)`, [N, C]);
    act(`${b}.x2 (B·T, C)`, [N, C]);
    ln(`${b}.ln_2`);
    act(`${b}.c_fc (B·T, 4C)`, [N, 4 * C]);
    act(`${b}.gelu (B·T, 4C)`, [N, 4 * C]);
    act(`${b}.mlp.c_proj (B·T, C)`, [N, C]);
    act(`${b}.x out (B·T, C)`, [N, C]);
  }
  ln('ln_f');
  act('logits (B·T, V)', [N, V], HEAD);
  crossEntropy(pool, N, V, 'step.');
  act('dln_f (B·T, C)', [N, C]);
  lnBackward('ln_f');
  for (let l = L - 1; l >= 0; l--) {
    const b = `h.${l}`;
    act(`${b}.dh (B·T, 4C)`, [N, 4 * C]);
    act(`${b}.dc_fc (B·T, 4C)`, [N, 4 * C]);
    act(`${b}.dln_2 (B·T, C)`, [N, C]);
    lnBackward(`${b}.ln_2`);
    act(`${b}.dx2 (B·T, C)`, [N, C]);
    act(`${b}.dy (B·T, C)`, [N, C]);
    act(`${b}.dy heads (B, nh, T, hs)`, heads);
    for (const x of ['dq', 'dk', 'dv']) act(`${b}.${x} (B, nh, T, hs)`, heads);
    act(`${b}.attn delta (B, nh, T)`, [B, nh, T]);
    pool.release(`step.${b}.attn delta (B, nh, T)`);
    act(`${b}.dqkv (B·T, 3C)`, [N, 3 * C]);
    act(`${b}.dln_1 (B·T, C)`, [N, C]);
    lnBackward(`${b}.ln_1`);
    act(`${b}.dx (B·T, C)`, [N, C]);
  }
  embeddingBackward(pool, N, V);
  pool.releaseAll('step.');
  pool.release('loss');
}

/** RecurrentModel.lossAndGrads: layers keep (hprev, out, gates[, c]) for BPTT; scratch is released as it goes */
function recurrentStep(pool: PoolModel, c: RecurrentConfig, B: number, T: number): void {
  const { model, embed_size: E, hidden_size: H, num_layers: L, vocab_size: V } = c;
  const G = GATES[model];
  const N = B * T;
  const act = (name: string, shape: number[], shrink = BATCH) => pool.acquire(`step.${name}`, shape, 'activations', shrink);
  const free = (...names: string[]) => pool.release(...names.map((n) => `step.${n}`));
  act('embedding (B, T, E)', [B, T, E]);
  for (let k = 0; k < L; k++) {
    const l = `l${k}`;
    act(`${l} input projection (B, T, G·H)`, [B, T, G * H]);
    act(`${l} W_hh transposed (H, G·H)`, [H, G * H], MODEL_SHRINK[model]);
    act(`${l} hprev (B, T, H)`, [B, T, H]);
    if (model === 'lstm') {
      act(`${l} c (B, T+1, H)`, [B, T + 1, H]);
      act(`${l} gates (B, T, 4H)`, [B, T, 4 * H]);
    }
    act(`${l} out (B, T, H)`, [B, T, H]);
    if (model === 'gru') act(`${l} gates (B, T, 4H)`, [B, T, 4 * H]);
    act(`${l} h_n (B, H)`, [B, H]);
    if (model === 'lstm') act(`${l} c_n (B, H)`, [B, H]);
    free(`${l} input projection (B, T, G·H)`, `${l} W_hh transposed (H, G·H)`, `${l} h_n (B, H)`, ...(model === 'lstm' ? [`${l} c_n (B, H)`] : []));
  }
  act('logits (B·T, V)', [N, V], HEAD);
  crossEntropy(pool, N, V, 'step.');
  act(`l${L - 1} dout (B, T, H)`, [B, T, H]);
  free('logits (B·T, V)', 'lse (B·T)', 'dlogits (B·T, V)');
  for (let k = L - 1; k >= 0; k--) {
    const l = `l${k}`;
    const I = k === 0 ? E : H;
    const scratch = model === 'gru' ? [`${l} dgates_i (B, T, 3H)`, `${l} dgates_h (B, T, 3H)`, `${l} dh carry (B, H)`] : [`${l} dgates (B, T, G·H)`];
    if (model === 'gru') {
      act(scratch[0], [B, T, 3 * H]);
      act(scratch[1], [B, T, 3 * H]);
      act(scratch[2], [B, H]);
    } else {
      act(scratch[0], [B, T, G * H]);
      if (model === 'lstm') act(`${l} dc (B, H)`, [B, H]);
    }
    act(`${l} dh0 (B, H)`, [B, H]);
    const dx = k === 0 ? 'dembedding (B, T, E)' : `l${k - 1} dout (B, T, H)`;
    act(dx, [B, T, I]);
    free(...scratch);
    free(`${l} hprev (B, T, H)`, ...(model === 'lstm' ? [`${l} c (B, T+1, H)`] : []), ...(model === 'rnn' ? [] : [`${l} gates (B, T, 4H)`]));
    free(`${l} dh0 (B, H)`, ...(model === 'lstm' ? [`${l} dc (B, H)`] : []));
    free(`${l} dout (B, T, H)`, `${l} out (B, T, H)`);
  }
  embeddingBackward(pool, N, V);
  free('dembedding (B, T, E)', 'embedding (B, T, E)');
  pool.release('loss');
}

/** what a training step of `config` on (B, T) batches holds on the GPU (see the header) */
export function estimateStepMemory(config: ModelConfig, B: number, T: number): MemoryEstimate {
  for (const [k, v] of [['B', B], ['T', T]] as const) if (!(Number.isInteger(v) && v >= 1)) throw new Error(`memory estimate: ${k} must be a positive integer, got ${v}`);
  const pool = new PoolModel();
  parameters(pool, config);
  // the model's constants: dL/dloss = 1 (and gpt's two spare bindings)
  pool.acquire('dloss = 1', [], 'activations', '');
  if (isGpt(config)) {
    pool.acquire('spare binding 1', [1], 'activations', '');
    pool.acquire('spare binding 2', [1], 'activations', '');
  }
  optimizer(pool, config);
  // the batch, kept while (B, T) stays the same
  if (isGpt(config)) pool.acquire('positions (B·T) i32', [B * T], 'activations', BATCH);
  pool.acquire('idx (B, T) i32', [B, T], 'activations', BATCH);
  pool.acquire('targets (B, T) i32', [B, T], 'activations', BATCH);
  if (isGpt(config)) gptStep(pool, config, B, T);
  else recurrentStep(pool, config, B, T);
  const largest = pool.buffers.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  const total = MEMORY_PARTS.reduce((s, p) => s + pool.bytes[p], 0);
  return { config, B, T, bytes: { ...pool.bytes }, total, buffers: pool.buffers, largest };
}

/** '1.5 MiB', '812 KiB', '3.25 GiB' */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)} ${units[i]}`;
}

/** the device limits the check reads (GPUSupportedLimits has both), and what it may hold in all, if known */
export interface DeviceCapacity {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  /** bytes the device can plausibly hold in all; undefined: unknown, not checked */
  memoryBytes?: number;
  /** where memoryBytes comes from, for the message (e.g. "the browser's navigator.deviceMemory") */
  memorySource?: string;
}

export class DeviceTooSmallError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeviceTooSmallError';
  }
}

/**
 * Throws a DeviceTooSmallError when a training step of the estimate cannot run on a device: a buffer larger than
 * the device allows one buffer to be (min of maxStorageBufferBindingSize and maxBufferSize: kernels bind whole
 * buffers), or a total beyond what the device may hold. The message names the tensor, its size, the limit and
 * what to shrink.
 */
export function checkDeviceFits(est: MemoryEstimate, dev: DeviceCapacity): void {
  const perBuffer = Math.min(dev.maxStorageBufferBindingSize, dev.maxBufferSize);
  const what = `a ${est.config.model} training step with B = ${est.B}, T = ${est.T}`;
  const tooBig = est.buffers.filter((b) => b.bytes > perBuffer);
  if (tooBig.length) {
    const b = tooBig.reduce((a, x) => (x.bytes > a.bytes ? x : a));
    const others = new Set(tooBig.filter((x) => x !== b).map((x) => x.name));
    throw new DeviceTooSmallError(
      `${what} needs a buffer of ${formatBytes(b.bytes)} for ${b.name} ${shapeStr(b.shape)}, more than this GPU's limit of ` +
        `${formatBytes(perBuffer)} per buffer (maxStorageBufferBindingSize ${dev.maxStorageBufferBindingSize}, maxBufferSize ${dev.maxBufferSize})` +
        `${others.size ? `; ${others.size} more buffer${others.size > 1 ? 's are' : ' is'} too large as well (${[...others].slice(0, 3).join(', ')}${others.size > 3 ? ', ...' : ''})` : ''}: ` +
        `shrink ${b.shrink || 'the model or the batch'} so it fits`,
    );
  }
  if (dev.memoryBytes !== undefined && est.total > dev.memoryBytes) {
    const p = est.bytes;
    const biggest = est.buffers.filter((b) => b.part === 'activations').reduce((a, b) => (b.bytes > a.bytes ? b : a), est.buffers[0]);
    const acts = p.activations >= p.weights + p.grads + p.optimizer;
    throw new DeviceTooSmallError(
      `${what} needs about ${formatBytes(est.total)} of GPU memory (weights ${formatBytes(p.weights)}, grads ${formatBytes(p.grads)}, ` +
        `optimizer state ${formatBytes(p.optimizer)}, activations ${formatBytes(p.activations)}), more than the ${formatBytes(dev.memoryBytes)} ` +
        `this device can plausibly hold${dev.memorySource ? ` (${dev.memorySource})` : ''}: ` +
        (acts ? `shrink ${BATCH} (the activations dominate; the largest is ${biggest.name} at ${formatBytes(biggest.bytes)})` : `shrink the model (${MODEL_SHRINK[est.config.model]})`),
    );
  }
}
