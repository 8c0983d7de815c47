// Host code rnn, lstm and gru share: shape checks (the reference's messages), the step grid, and the
// weight gradients, which are a few large matmuls over all timesteps at once once BPTT has produced the
// gate grads. Shapes: shared/reference/recurrent.ts.
import { recurrentDims, type RecurrentDims } from '../../shared/reference/recurrent.ts';
import type { Gpu, GpuTensor } from '../runtime/gpu.ts';
import { matmul, sumRows } from './matmul.ts';
import type { GpuTensors } from './op.ts';

export type { RecurrentDims };

/** a layer's parameters, PyTorch's weight_ih_l0 (G·H, I), weight_hh_l0 (G·H, H), bias_ih_l0, bias_hh_l0 (G·H) */
export interface RecurrentWeights {
  wih: GpuTensor;
  whh: GpuTensor;
  bih: GpuTensor;
  bhh: GpuTensor;
}

/** the weight grads, laid out as RecurrentWeights */
export interface RecurrentWeightGrads {
  dWih: GpuTensor;
  dWhh: GpuTensor;
  dbih: GpuTensor;
  dbhh: GpuTensor;
}

export interface RecurrentBackwardOptions {
  /** write the weight grads into these tensors (shaped as the weights) instead of new ones */
  into?: RecurrentWeightGrads;
  /** add to `into` instead of overwriting it (several sequences or chunks into one gradient) */
  accumulate?: boolean;
}

export const weightsOf = (i: GpuTensors): RecurrentWeights => ({ wih: i.weight_ih_l0, whh: i.weight_hh_l0, bih: i.bias_ih_l0, bhh: i.bias_hh_l0 });

export function gpuDims(name: string, G: number, x: GpuTensor, w: RecurrentWeights, h0?: GpuTensor, c0?: GpuTensor): RecurrentDims {
  return recurrentDims(name, G, { x: x.shape, h0: h0?.shape, c0: c0?.shape, wih: w.wih.shape, whh: w.whh.shape, bih: w.bih.shape, bhh: w.bhh.shape });
}

/** threads per workgroup along the hidden units of the dh0 kernels; each also covers 4 batch rows (vec4 lanes) */
export const STEP_WG = 64;

/** the dh0 kernels' grid: (⌈H / WG⌉, ⌈B / 4⌉) */
export const stepGrid = (d: RecurrentDims): [number, number] => [Math.ceil(d.H / STEP_WG), Math.ceil(d.B / 4)];

/**
 * The step kernels' shape: workgroup (JT, KS) = JT hidden units (each with 4 batch rows as vec4 lanes) × KS
 * slices of the dot products' k loop, whose partial sums meet in workgroup memory.
 */
export interface StepVariant {
  JT: number;
  KS: number;
}

const isSwiftShader = (g: Gpu) => g.isFallback || /swiftshader/i.test(g.adapterName);

let forcedStep: StepVariant | null = null;
/** variant override for tests and benchmarks: every variant must be correct on every adapter */
export function forceStepVariant(v: StepVariant | null): void {
  // JT·KS invocations, and lstm's 4 vec4 partial sums each: 64·JT·KS bytes of workgroup memory
  if (v && (v.JT * v.KS > 256 || v.JT < 1 || v.KS < 1)) throw new Error(`step variant (JT ${v.JT}, KS ${v.KS}): JT·KS must be 1..256`);
  forcedStep = v;
}

/**
 * SwiftShader (CPU) runs invocations as SIMD lanes on 2 cores: one long k loop per thread, no split (a 16-way
 * split with its barriers ran 10× slower there). Real GPUs: a step has only B·H outputs, too few threads to
 * hide memory latency, so the k loop is split 16 ways: on an H200 this brought an LSTM layer (B 8, T 64,
 * H 256) from 6.4 to 2.5 ms forward and 15.4 to 4.2 ms backward, down to the cost of recording the dispatches.
 */
export function stepVariant(g: Gpu): StepVariant {
  return forcedStep ?? (isSwiftShader(g) ? { JT: 64, KS: 1 } : { JT: 16, KS: 16 });
}

/** the step kernels' grid for a variant: (⌈H / JT⌉, ⌈B / 4⌉) */
export const variantGrid = (v: StepVariant, d: RecurrentDims): [number, number] => [Math.ceil(d.H / v.JT), Math.ceil(d.B / 4)];

/** grid for one thread per element in workgroups of 256 */
export const elementGrid = (g: Gpu, n: number) => g.grid(Math.ceil(n / 256));

/** x (B, T, I) @ W_ihᵀ + b_ih for every timestep: (B, T, G·H) */
export function inputProjection(g: Gpu, x: GpuTensor, w: RecurrentWeights, d: RecurrentDims): GpuTensor {
  const xp = matmul(g, { ...x, shape: [d.B * d.T, d.I] }, w.wih, { transB: true, bias: w.bih });
  return { ...xp, shape: [d.B, d.T, w.wih.shape[0]] };
}

/**
 * Everything after the recurrence, as matmuls over all B·T rows at once. dgi (B, T, G·H) is the grad of
 * the input side's pre-activations, dgh that of the hidden side's (the same tensor for rnn and lstm):
 *   dx = dgi W_ih,  dW_ih = dgiᵀ x,  db_ih = Σ dgi,  dW_hh = dghᵀ hprev,  db_hh = Σ dgh
 */
export function weightGrads(
  g: Gpu,
  d: RecurrentDims,
  x: GpuTensor,
  hprev: GpuTensor,
  dgi: GpuTensor,
  dgh: GpuTensor,
  w: RecurrentWeights,
  opts: RecurrentBackwardOptions = {},
): RecurrentWeightGrads & { dx: GpuTensor } {
  const { B, T, I, H } = d;
  const GH = w.whh.shape[0];
  const rows = B * T;
  if (opts.accumulate && !opts.into) throw new Error('recurrent backward: accumulate needs `into`, the grads to add to');
  const gi = { ...dgi, shape: [rows, GH] };
  const gh = { ...dgh, shape: [rows, GH] };
  const acc = { accumulate: !!opts.accumulate };
  const dx = matmul(g, gi, w.wih);
  const dWih = matmul(g, gi, { ...x, shape: [rows, I] }, { transA: true, out: opts.into?.dWih, ...acc });
  const dWhh = matmul(g, gh, { ...hprev, shape: [rows, H] }, { transA: true, out: opts.into?.dWhh, ...acc });
  const dbih = sumRows(g, gi, rows, GH, { out: opts.into?.dbih, ...acc });
  const dbhh = sumRows(g, gh, rows, GH, { out: opts.into?.dbhh, ...acc });
  return {
    dx: { ...dx, shape: [B, T, I] },
    dWih: { ...dWih, shape: [...w.wih.shape] },
    dWhh: { ...dWhh, shape: [...w.whh.shape] },
    dbih: { ...dbih, shape: [...w.bih.shape] },
    dbhh: { ...dbhh, shape: [...w.bhh.shape] },
  };
}

/** keys under which an op's forward hands its saved tensors to its backward (not read back by the runner) */
export const SAVED = { hprev: 'saved_hprev', cs: 'saved_cs', gates: 'saved_gates' } as const;
